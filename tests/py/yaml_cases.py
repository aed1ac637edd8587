"""Cases for test_yaml_diff.py: each is loaded by PyYAML's safe_load and by
the C loader (tests/tools/yaml_dump), and the typed trees must be equal, or
both loaders must fail.

SCALARS are single-scalar documents (the text is the whole document).
DOCUMENTS are (name, text) pairs; names ending in "_dup" must also make the
C loader warn about a duplicate key.
"""

SCALARS = [
    # null
    "~", "null", "Null", "NULL", "nULL", "", "'null'",
    # bool, YAML 1.1 spellings (PyYAML: y/n are strings)
    "yes", "Yes", "YES", "yEs", "no", "No", "NO", "true", "True", "TRUE", "tRUE",
    "false", "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF", "y", "Y",
    "n", "N", "'yes'", '"on"',
    # int
    "0", "-0", "+0", "12", "-12", "+12", "1_000", "1__0_", "0777", "-0777",
    "0o777", "0_7", "08", "09", "0b1010", "-0b1010", "0b_1", "0x1F", "0x_ff",
    "-0xAb", "0X1F", "0xg", "190:20:30", "-190:20:30", "1:70", "1:7", "0:30",
    "1_0:30", "9223372036854775807", "-9223372036854775808",
    # float
    "1.0", "-1.5", "+1.5", "1.", "1_000.5", ".5", "-.5", "1e3", "1.0e3",
    "1.0e+3", "1.0E-3", "6.8523015e+5", "685.230_15e+03", "1.e+2", ".5e+2",
    ".inf", ".Inf", ".INF", "-.inf", "+.inf", ".iNF", ".nan", ".NaN", ".NAN",
    "-.nan", "nan", "inf", "190:20:30.15", "-1:30.5", "0:30.5", "1:60.5",
    "0.1", "3.14159265358979323846", "1e400", "1.0e+400", "-0.0", "0.0000001",
    "12345678901234567890.0",
    # timestamp
    "2001-12-14", "2001-12-14t21:59:43.10-05:00", "2001-12-14 21:59:43.10 -5",
    "2001-12-15T02:59:43.1Z", "2001-12-15 2:59:43.10", "2002-12-14",
    "2001-12-14T21:59:43", "2001-12-14T21:59:43.1234567", "2001-12-14 21:59:43 Z",
    "2001-12-14T21:59:43+01:30", "2001-12-14T21:59:43-00:00",
    "2001-12-14T21:59:43.+05", "2001-1-5", "2001-1-5 1:02:03", "2001-12-14T1:2:3",
    "2024-02-29", "1970-01-01", "0001-01-01", "1969-12-31 23:59:59.999999",
    # strings that look almost like something else
    "'123'", '"1.5"', "'2001-12-14'", "abc", "hello world", "a: b", "'<<'",
    "x:y", "1.2.3", "12:30:45:", "0.1.2", "~x", "True1", "- -", "1 2",
    # quoted and escaped
    '"tab\\there"', '"unicode \\u00e9 \\U0001F600"', "'it''s'", '"\\x41\\x42"',
    '"line\\nbreak"', '"  spaced  "', "'  spaced  '",
    # Cyrillic
    "Привет, мир", "'ключ: значение'", '"ёжик"',
    # block scalars
    "|\n  line1\n  line2\n", "|-\n  line1\n  line2\n", "|+\n  line1\n  line2\n\n",
    ">\n  folded\n  text\n\n  para\n", ">-\n  folded\n  text\n", ">+\n  kept\n\n",
    "|2\n    indented\n",
    # explicit tags
    "!!str 123", "!!str yes", "!!str", "!!int '123'", '!!int "0x10"',
    "!!int ' 12'", "!!int 1.5", "!!int abc", "!!float '1'", "!!float 1e3",
    "!!float ' 2.5 '", "!!float abc", "!!bool 'yes'", "!!bool yEs", "!!bool y",
    "!!null 'x'", "!!null", "! 123", "! '123'", "!!timestamp 2001-1-5",
    "!!timestamp '2001-12-14 21:59:43'", "!!timestamp nope", "!foo bar",
    "!!map x", "!!seq x", "!<tag:yaml.org,2002:str> 12",
    # errors PyYAML raises while constructing
    "0b_", "0x_", "2001-02-30", "2001-13-01", "0000-01-01", "2001-12-14 24:00:00",
    "2001-12-14 23:60:00", "2001-12-14 23:59:60", "2001-12-14 12:00:00 +24:00",
    "2001-12-14 12:00:00 +23:59", "=", "<<",
    # flow collections as scalars' neighbours
    "[]", "{}", "[1, yes, '2', 3.0, ~]", "{a: 1, 'b': no}",
]

DOCUMENTS = [
    ("empty_stream", ""),
    ("only_comment", "# nothing here\n"),
    ("explicit_empty_doc", "---\n"),
    ("doc_end_marker", "a: 1\n...\n"),
    ("two_documents", "a: 1\n---\nb: 2\n"),
    ("two_documents_flow", "[1, 2]\n--- 3\n"),
    ("nested_config", """\
name: cpu_load
enabled: yes
schedule:
  interval: 10m
  start: 2024-01-01
  at: 2024-01-01 00:00:00
collector:
  type: clickhouse
  params:
    port: 9000
    timeout: 1.5
    retries: 0x3
    query: |
      SELECT count() FROM t
      WHERE ts > now() - 60
detectors:
  - type: mad
    params: {window_size: 30, n_sigma: 3.0}
  - type: threshold
    params:
      upper: 1e3
      lower: -.inf
"""),
    ("merge_single", """\
base: &base
  a: 1
  b: 2
child:
  <<: *base
  b: 3
  c: 4
"""),
    ("merge_list", """\
A: &A {x: 1, y: 2}
B: &B {y: 3, z: 4}
C:
  <<: [*A, *B]
  w: 0
"""),
    ("merge_list_reversed", """\
A: &A {x: 1, y: 2}
B: &B {y: 3, z: 4}
C:
  <<: [*B, *A]
"""),
    ("merge_nested", """\
a: &a {k1: 1}
b: &b {<<: *a, k2: 2}
c: {<<: *b, k3: 3, k1: 10}
"""),
    ("merge_two_merge_keys", """\
a: &a {k: 1, p: 1}
b: &b {k: 2, q: 2}
c:
  <<: *a
  <<: *b
"""),
    ("merge_inline_map", "c:\n  <<: {x: 1}\n  y: 2\n"),
    ("merge_empty_maps", "e: &e {}\nm: {<<: [*e, *e]}\nn: {<<: *e, a: 1}\n"),
    ("merge_self_reference", "a: &a {<<: *a, x: 1}\n"),
    ("merge_chain_precedence", """\
a: &a {k: a, only_a: 1}
b: &b {<<: *a, k: b}
c: &c {k: c, only_c: 3}
d:
  <<: [*b, *c]
  own: 4
"""),
    ("merge_non_mapping", "a: &a 1\nb:\n  <<: *a\n"),
    ("merge_list_with_scalar", "a: &a {x: 1}\nb:\n  <<: [*a, 2]\n"),
    ("merge_quoted_key", "a: &a {x: 1}\nb:\n  '<<': *a\n"),
    ("merge_value_position", "a: <<\n"),
    ("equals_key", "=: 1\nb: 2\n"),
    ("anchors_and_aliases", """\
defaults: &d
  retries: 3
  hosts: [a, b]
x: *d
y: [*d, *d]
s: &s hello
t: *s
"""),
    ("undefined_alias", "a: *nope\n"),
    ("duplicate_anchor", "a: &x 1\nb: &x 2\n"),
    ("duplicate_keys_dup", "a: 1\nb: 2\na: 3\n"),
    ("duplicate_keys_nested_dup", "outer:\n  k: 1\n  k: 2\n  j: [1]\n"),
    ("duplicate_keys_mixed_types_dup", "1: a\n1.0: b\nyes: c\ntrue: d\n"),
    ("duplicate_merge_override", "a: &a {x: 1}\nb:\n  <<: *a\n  x: 2\n"),
    ("null_keys", "~: a\nnull: b\n? \n: c\n"),
    ("null_key_and_value", "? ~\n"),
    ("non_string_keys", """\
1: int
1.5: float
yes: bool
no: bool
2001-12-14: date
2001-12-14 10:00:00: datetime
'1': quoted
"""),
    ("aware_datetime_keys_collide", "{2001-01-01 10:00:00+01:00: a, 2001-01-01 09:00:00Z: b}\n"),
    ("nan_keys_collide", "{.nan: 1, .nan: 2}\n"),
    ("unhashable_list_key", "? [a, b]\n: 1\n"),
    ("unhashable_map_key", "? {a: 1}\n: 1\n"),
    ("empty_values", "a:\nb: ''\nc: \"\"\nd: []\ne: {}\nf: ~\n"),
    ("empty_sequence_items", "- \n- ~\n-\n- ''\n"),
    ("flow_collections", "{a: [1, 2, {b: c}], d: {e: [f, g]}, 'h i': j, k: [yes, off, 0o7]}\n"),
    ("flow_seq_of_maps", "[{a: 1}, {b: 2}, c: 3]\n"),
    ("block_chomping", """\
clip: |
  text

strip: |-
  text

keep: |+
  text

folded: >
  one
  two

  three
folded_strip: >-
  one
  two
"""),
    ("block_indent_indicator", "a: |2\n    four spaces\n  two spaces\n"),
    ("cyrillic_document", """\
название: Нагрузка ЦП
описание: "Проверка — «кавычки»"
теги: [прод, тест]
да: yes
"""),
    ("quoted_numbers", "a: '1'\nb: \"2.5\"\nc: '0777'\nd: \"yes\"\ne: '2001-12-14'\nf: '~'\n"),
    ("explicit_tags_in_map", """\
a: !!str 123
b: !!int "42"
c: !!float "3"
d: !!bool "on"
e: !!null ""
f: !!map {x: 1}
g: !!seq [1, 2]
h: ! 12
"""),
    ("unknown_tag", "a: !custom 1\n"),
    ("unknown_tag_on_map", "a: !!python/object {x: 1}\n"),
    ("seq_tag_on_map", "a: !!seq {x: 1}\n"),
    ("str_tag_on_seq", "a: !!str [1]\n"),
    ("sexagesimal_and_octal", "time: 1:30:00\nangle: 190:20:30.15\nmode: 0644\nstr: 0o644\n"),
    ("datetimes", """\
- 2001-12-14t21:59:43.10-05:00
- 2001-12-14 21:59:43.10 -5
- 2001-12-15T02:59:43.1Z
- 2001-12-15 2:59:43.10
- 2002-12-14
- 2001-12-14T21:59:43.123456789+01:30
"""),
    ("comments_everywhere", "# head\na: 1 # one\n# mid\nb: [2, # two\n  3]\n"),
    ("multiline_plain", "a: this is\n  a multi line\n  plain scalar\nb: 'single\n  quoted'\n"),
    ("nested_sequences", "- - - 1\n    - 2\n  - 3\n- 4\n"),
    ("tab_after_colon", "a:\tb\n"),
    ("tab_inside_plain", "a: x\ty\n"),
    ("tab_before_comment", "a: 1\t# c\n"),
    ("tab_inside_comment", "a: 1 # c\td\n"),
    ("tab_in_flow", "[1,\t2]\n"),
    ("tab_in_quoted", "a: 'x\ty'\nb: \"x\n\ty\"\n"),
    ("tab_in_block_content", "a: |\n  x\ty\n  \tz\n"),
    ("tab_in_block_header", "a: |\t# c\n  x\n"),
    ("tab_blank_line", "a: 1\n\t\nb: 2\n"),
    ("bad_indentation", "a:\n  b: 1\n c: 2\n"),
    ("unclosed_flow", "a: [1, 2\n"),
    ("unclosed_quote", "a: \"abc\n"),
    ("yaml_directive", "%YAML 1.1\n---\na: 1\n"),
    ("tag_directive", "%TAG !e! tag:yaml.org,2002:\n---\na: !e!int '7'\n"),
    ("bom_prefix", "\ufeffa: 1\n"),
    ("crlf_lines", "a: 1\r\nb: |\r\n  x\r\n  y\r\n"),
    ("long_key_question", "? a\n: 1\n? b\n"),
    ("env_placeholders", "port: ${PORT}\nurl: \"${URL:-http://x}\"\nexpr: ${{ a }}\n"),
    ("alias_as_key_dup", "&k key: 1\n*k : 2\n"),
    ("tag_and_anchor", "a: !!str &x 12\nb: *x\nc: &y !!int '7'\nd: *y\n"),
    ("root_block_scalar", "--- |\n  root text\n  more\n"),
    ("flow_pairs_in_seq", "[a: 1, {b: 2}, ? c]\n"),
    ("long_string", "a: " + "x" * 5000 + "\nb: '" + "й" * 3000 + "'\n"),
]
