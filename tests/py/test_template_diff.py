"""Differential test of the C template engine against Jinja2 3.1.

Every case is rendered by jinja2.Environment() (defaults: autoescape off,
trim_blocks/lstrip_blocks off, keep_trailing_newline off) with DetectK's
datetime_format filter registered, and by $DTK_BINARY_DIR/tests/template_render.
The outputs must be equal byte for byte; when Jinja2 raises, the C side must
fail too. Groups:
  corpus    every message_template in the DetectK example configs
            (../shared/corpus/detectk-examples), with several variable sets
  hand      hand-written templates covering every construct of the subset
  generated random expressions from random.Random(1234)
  strict    StrictUndefined against template_render --strict
  outside   constructs outside the subset: Jinja2 accepts them, C must refuse
            them at compile time with "not supported" (documents the limits)
Prints counts per group and exits non-zero listing every mismatch.
"""

import datetime
import json
import os
import random
import subprocess
import sys
import tempfile

import jinja2
import yaml

SRC = os.environ.get("DTK_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("DTK_BINARY_DIR", os.path.join(SRC, "build"))
TOOL = os.path.join(BIN, "tests", "template_render")
CORPUS = os.path.join(SRC, "..", "shared", "corpus", "detectk-examples")


def datetime_format(value, fmt="%Y-%m-%d %H:%M:%S"):
    """DetectK's custom filter as the C side implements it: strftime for
    dates and datetimes, str() for anything else."""
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.strftime(fmt)
    return str(value)


def make_env(strict=False):
    env = jinja2.Environment(undefined=jinja2.StrictUndefined) if strict else jinja2.Environment()
    env.filters["datetime_format"] = datetime_format
    return env


ENV = make_env()
STRICT_ENV = make_env(strict=True)


def to_json(o):
    if isinstance(o, datetime.datetime):
        return {"__datetime__": o.isoformat()}
    if isinstance(o, datetime.date):
        return {"__date__": o.isoformat()}
    if isinstance(o, dict):
        return {k: to_json(v) for k, v in o.items()}
    if isinstance(o, list):
        return [to_json(v) for v in o]
    return o


UTC = datetime.timezone.utc
TS = datetime.datetime(2024, 11, 2, 14, 30)

# Variable sets with DetectK's template variables (detection.md, Messages).
MAD_SET = {
    "metric_name": "sessions_10min",
    "timestamp": TS,
    "value": 1234.5,
    "is_anomaly": True,
    "score": 4.2,
    "lower_bound": 900.0,
    "upper_bound": 1100.0,
    "direction": "up",
    "percent_deviation": 15.0,
    "metadata": {
        "detector": "mad",
        "window_size": "30 days",
        "n_sigma": 3.0,
        "median": 1000.0,
        "mad_sigma": 66.66666666666667,
        "detector_id": "a1b2c3d4",
        "detector_type": "mad",
    },
    "detections": [
        {"detector_id": "a1b2c3d4", "detector_type": "mad", "is_anomaly": True, "score": 4.2},
        {"detector_id": "e5f6a7b8", "detector_type": "zscore", "is_anomaly": False, "score": 1.5},
    ],
    "tags": ["prod", "sessions"],
    "description": "Sessions per 10 minutes",
    "metric_metadata": {"team": "web", "owner": "alice"},
    "status": "anomaly",
    "execution_time": datetime.datetime(2024, 11, 2, 14, 40),
}

THRESHOLD_INF_SET = {
    "metric_name": "сессии_10мин",
    "timestamp": datetime.datetime(2024, 1, 31, 23, 59, 59),
    "value": 87.125,
    "is_anomaly": True,
    "score": float("inf"),
    "lower_bound": None,
    "upper_bound": None,
    "direction": "down",
    "percent_deviation": -12.5,
    "metadata": {
        "detector": "threshold",
        "threshold": 100.0,
        "operator": "less_than",
        "detector_id": "0f0f0f0f",
        "detector_type": "threshold",
    },
    "detections": [],
    "tags": [],
    "description": "Число сессий за 10 минут",
    "metric_metadata": {},
    "status": "anomaly",
    "execution_time": datetime.datetime(2024, 2, 1, 0, 0),
}

ZSCORE_SET = {
    "metric_name": "revenue_hourly",
    "timestamp": datetime.datetime(2024, 3, 5, 7, 0, 0, 250000),
    "value": 0.1 + 0.2,
    "is_anomaly": True,
    "score": 3.0000000000000004,
    "lower_bound": 0.0,
    "upper_bound": 1e16,
    "direction": None,
    "percent_deviation": None,
    "metadata": {
        "detector": "zscore",
        "window_size": 288,
        "n_sigma": 3,
        "mean": 2.5e-05,
        "std": 1e-05,
        "detector_id": "deadbeef",
        "detector_type": "zscore",
    },
    "detections": [{"detector_id": "deadbeef", "detector_type": "zscore", "is_anomaly": True, "score": None}],
    "tags": ["finance"],
    "description": None,
    "metric_metadata": {"unit": "€"},
    "status": "anomaly",
    "execution_time": datetime.datetime(2024, 3, 5, 8, 0, tzinfo=UTC),
}

MISSING_VALUE_SET = dict(ZSCORE_SET, value=None, score=None, metadata={}, timestamp=None)

CORPUS_SETS = [("mad", MAD_SET), ("threshold_inf", THRESHOLD_INF_SET), ("zscore", ZSCORE_SET),
               ("missing_value", MISSING_VALUE_SET)]

HAND_VARS = {
    "x": 7, "y": -3, "z": 0, "f": 2.5, "g": 0.1, "h": -0.0, "big": 1e16, "tiny": 1e-05,
    "i64": 9007199254740993, "s": "abc", "u": "Привет, мир", "e": "", "q": "it's", "n": None,
    "b": True, "c": False, "l": [1, "a", None, 2.5], "d": {"a": 1, "b": "x"},
    "inf": float("inf"), "nan": float("nan"),
    "ts": TS, "tsu": datetime.datetime(2024, 11, 2, 14, 30, 5, 123),
    "tz": datetime.datetime(2024, 11, 2, 14, 30, tzinfo=UTC),
    "tzp": datetime.datetime(2024, 11, 2, 14, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=3))),
    "day": datetime.date(2024, 11, 2),
    "rows": [{"name": "a", "v": 1.5}, {"name": "б", "v": None}, {"name": "c", "v": 3}],
    "pairs": [["k1", 1], ["k2", 2]],
    "md": MAD_SET["metadata"],
    "имя": "Юля",
}

HAND = [
    # printing of values
    "{{ x }} {{ f }} {{ g + 0.2 }} {{ tiny }} {{ big }} {{ h }} {{ n }} {{ b }} {{ inf }} {{ -inf }} {{ nan }}",
    "{{ 1e-05 }} {{ 1e16 }} {{ 1e15 }} {{ 123456789.125 }} {{ 1.5e300 }} {{ 0.0001 }} {{ 100.0 }}",
    "{{ i64 }} {{ 9223372036854775807 }} {{ -9223372036854775807 }} {{ 0x1F }} {{ 0o17 }} {{ 0b101 }} {{ 1_000 }}",
    "{{ l }} {{ d }} {{ [] }} {{ {} }} {{ [[1, [2]], {'k': [None, True]}] }}",
    "{{ ts }} {{ tsu }} {{ tz }} {{ tzp }} {{ day }}",
    "{{ [ts, tsu, tz, tzp, day] }}",
    "{{ ['it\\'s', \"q\\\"\", 'a\\nb', 'é', '\\x00', '\\t', '\\\\', 'Привет', '\\u2028', '\\xa0'] }}",
    "{{ {'a': 'b', 1: 2.0, none: true} }}",
    "{{ 'tab\\there' }}|{{ \"dq 'sq'\" }}|{{ 'a' 'b' \"c\" }}|{{ '\\101\\x42\\u0043' }}|{{ 'keep \\d' }}",
    # arithmetic
    "{{ x / 2 }} {{ x // 2 }} {{ y // 2 }} {{ y % 5 }} {{ x % -3 }} {{ f % -1 }} {{ -7.5 // 2 }} {{ 7.5 % -2 }}",
    "{{ 2 ** 10 }} {{ 2 ** -1 }} {{ -2 ** 2 }} {{ 2 ** 3 ** 2 }} {{ 2.0 ** 0.5 }} {{ 0 ** 0 }} {{ b + b }}",
    "{{ x + f }} {{ x - g }} {{ x * g }} {{ 1 / 3 }} {{ 2 / 3 * 3 }} {{ -x }} {{ +y }} {{ -b }} {{ - - x }}",
    "{{ 'ab' * 3 }} {{ 3 * 'ab' }} {{ [1] * 2 }} {{ 'a' * -1 }} {{ [1] + [2, 3] }} {{ 'a' + 'b' }}",
    "{{ inf - inf }} {{ inf * 0 }} {{ -inf // 1 }} {{ 5 % inf }} {{ inf > big }}",
    "{{ x / 0 }}",
    "{{ f // 0.0 }}",
    "{{ x % 0 }}",
    "{{ 0.0 ** -1 }}",
    "{{ 'a' + 1 }}",
    "{{ 1 - 'a' }}",
    "{{ [1] + 'a' }}",
    "{{ -s }}",
    # ~ concatenation
    "{{ 'a' ~ 1 ~ none ~ missing ~ 2.5 ~ l ~ ts }}",
    "{{ s ~ u ~ e ~ b }}",
    # comparisons, in, boolean logic
    "{{ 1 == 1.0 }} {{ b == 1 }} {{ 'a' != 'b' }} {{ l == [1, 'a', none, 2.5] }} {{ d == {'b': 'x', 'a': 1} }}",
    "{{ 1 < 2.5 }} {{ 'abc' < 'abd' }} {{ 'Я' > 'а' }} {{ [1, 2] < [1, 3] }} {{ ts < tsu }} {{ tz < tzp }} {{ nan < 1 }} {{ nan == nan }}",
    "{{ i64 == 9007199254740992.0 }} {{ i64 > 9007199254740992.0 }}",
    "{{ 1 < 'a' }}",
    "{{ ts < tz }}",
    "{{ n < 1 }}",
    "{{ ts == tz }} {{ day == ts }} {{ missing == missing }} {{ missing != 1 }} {{ n == missing }}",
    "{{ 1 in l }} {{ 'a' in s }} {{ 'z' not in d }} {{ 'a' in d }} {{ '' in s }} {{ 'ри' in u }} {{ none in l }} {{ 2 in missing }}",
    "{{ 1 in s }}",
    "{{ 1 in x }}",
    "{{ x and y }} {{ n or 'fallback' }} {{ not x }} {{ missing or 5 }} {{ z and 1 }} {{ e or l }} {{ not missing }} {{ x and missing }}",
    "{{ 1 if n else 2 }}|{{ 1 if n }}|{{ 'a' if x > 5 else 'b' if x > 2 else 'c' }}",
    # attribute and item access
    "{{ d.a }}|{{ d['b'] }}|{{ d.c }}|{{ d['c'] }}|{{ l[0] }}|{{ l[-1] }}|{{ l[10] }}|{{ l.1 }}|{{ s[1] }}|{{ u[-1] }}|{{ d[0] }}",
    "{{ u[1:3] }}|{{ l[::-1] }}|{{ l[1:] }}|{{ s[:-1] }}|{{ l[::2] }}|{{ s[5:1:-1] }}|{{ u[::-2] }}",
    "{{ none.foo }}|{{ s.foo }}|{{ x['k'] }}|{{ l['k'] }}|{{ md.median }}|{{ md['detector'] }}",
    "{{ missing.attr }}",
    "{{ missing['k'] }}",
    "{{ d.c.e }}",
    "{{ rows[1].name }} {{ rows[1]['v'] }} {{ rows[0].v * 2 }}",
    # tests
    "{{ x is defined }} {{ missing is defined }} {{ missing is not defined }} {{ missing is undefined }} {{ d.zz is defined }}",
    "{{ n is none }} {{ x is not none }} {{ missing is none }} {{ f is number }} {{ s is number }} {{ b is number }} {{ s is string }} {{ n is string }}",
    "{{ x is odd }} {{ x is even }} {{ y is odd }} {{ 2.0 is even }} {{ b is true }} {{ c is false }} {{ 1 is true }}",
    "{% if x is defined and x > 3 %}yes{% endif %}{% if missing is not defined or missing > 3 %}no-missing{% endif %}",
    # filters
    "{{ 2.5|round }} {{ 3.5|round }} {{ 2.675|round(2) }} {{ 150|round(2) }} {{ 1234.5678|round(-2) }} {{ 15|round(-1) }} {{ 25|round(-1) }} {{ -0.4|round }}",
    "{{ 2.5|round(0, 'floor') }} {{ 2.1|round(0, 'ceil') }} {{ -2.5|round(1, 'floor') }} {{ 7|round(method='ceil') }} {{ 1.23456|round(precision=3) }} {{ inf|round(2) }} {{ b|round }}",
    "{{ 1234.5|round(1) }} {{ 0.125|round(2) }} {{ 0.375|round(2) }} {{ 1e16|round(2) }} {{ 5e-324|round(400) }} {{ 123.456|round(-5) }} {{ 0.5|round(-1) }}",
    "{{ 'x'|round }}",
    "{{ n|round(2) }}",
    "{{ 2.5|round(1, 'up') }}",
    "{{ '42'|int }} {{ '4.7'|int }} {{ 'x'|int }} {{ 3.9|int }} {{ -3.9|int }} {{ n|int }} {{ ' 1_000 '|int }} {{ '0x1f'|int(base=16) }} {{ 'ff'|int(0, 16) }} {{ '1e3'|int }} {{ 'nan'|int }} {{ b|int }} {{ l|int(-1) }}",
    "{{ inf|int }}",
    "{{ '3.5'|float }} {{ 'x'|float }} {{ 'x'|float(1.5) }} {{ ' -Infinity '|float }} {{ '1_0.5'|float }} {{ x|float }} {{ n|float }} {{ '.5'|float }} {{ '5.'|float }}",
    "{{ y|abs }} {{ -2.5|abs }} {{ h|abs }} {{ b|abs }}",
    "{{ missing|default('dflt') }} {{ ''|default('e', true) }} {{ n|d('nn') }} {{ n|d('nn', true) }} {{ 0|default(5, boolean=true) }} {{ missing|default }}.",
    "{{ u|upper }} {{ u|lower }} {{ 'straße'|upper }} {{ 'ǅ'|lower }} {{ x|upper }} {{ n|lower }} {{ l|upper }}",
    "{{ u|length }} {{ l|count }} {{ d|length }} {{ e|length }} {{ missing|length }}",
    "{{ x|length }}",
    "{{ l|join(', ') }} {{ s|join('-') }} {{ d|join }} {{ rows|join(', ', attribute='name') }} {{ [1, 2]|join(none) }} {{ []|join(',') }}",
    "{{ 'aaa'|replace('a', 'b', 2) }} {{ 'abc'|replace('', '-') }} {{ u|replace('мир', 'world') }} {{ x|replace(7, 8) }}",
    "{{ '  x  '|trim }}|{{ 'xxaxx'|trim('x') }}|{{ '\\u3000 y\\n'|trim }}|{{ 'ыaы'|trim('ы') }}",
    "{{ '%.2f'|format(f) }} {{ '%5d|%-5d|%05d'|format(x, x, y) }} {{ '%s %r %a'|format(s, u, u) }} {{ '%e %g %x %X %o %%'|format(g, g, 255, 255, 8) }}",
    "{{ '%+d % d %+.1f %#x %#o %c %c'|format(5, 5, -0.0, 255, 8, 1046, 'ы') }} {{ '%10.3s|%-6s|'|format(u, 'ab') }} {{ '%(a)s-%(b)05.1f'|format(a='k', b=2.25) }}",
    "{{ '%.0f %.0f %.1e %G %g %g'|format(0.5, 1.5, 12345.678, 1e-20, 1e16, 123456789) }} {{ '%f|%5.1f|%05f'|format(inf, -inf, nan) }} {{ '%d'|format(3.99) }}",
    "{{ '%s'|format(l) }} {{ '%s' % l }} {{ '%d items' % x }} {{ 'abc' % [1] }} {{ '%s' % missing }} {{ '%.1f%%' % f }}",
    "{{ '%d'|format('x') }}",
    "{{ '%s %s'|format(1) }}",
    "{{ 'abc' % 1 }}",
    "{{ '%y'|format(1) }}",
    # datetimes
    "{{ ts.strftime('%Y-%m-%d %H:%M:%S %a %A %b %B %j %U %w %y %f %z %Z %%') }}",
    "{{ tz.strftime('%z|%Z') }} {{ tzp.strftime('%z|%Z|%H') }} {{ day.strftime('%d.%m.%Y %H') }} {{ ts.strftime('%d.%m.%Y в %H:%M') }}",
    "{{ ts.isoformat() }} {{ tsu.isoformat() }} {{ tz.isoformat() }} {{ tzp.isoformat(' ') }} {{ day.isoformat() }}",
    "{{ ts.timestamp() }} {{ tsu.timestamp() }} {{ tz.timestamp() }} {{ tzp.timestamp() }} {{ (ts.timestamp() * 1000 - 3600000) | int }}",
    "{{ ts.date() }} {{ tsu.date() }} {{ ts.year }}-{{ ts.month }}-{{ ts.day }} {{ ts.hour }}:{{ ts.minute }}:{{ ts.second }}.{{ tsu.microsecond }} {{ ts.weekday() }} {{ ts.isoweekday() }}",
    "{{ ts|datetime_format }} {{ ts|datetime_format('%H:%M') }} {{ day|datetime_format('%Y') }} {{ x|datetime_format }} {{ missing|datetime_format }} {{ n|datetime_format }}",
    "{{ s.strftime('%Y') }}",
    "{{ day.timestamp() }}",
    "{{ ts.strftime(5) }}",
    # statements
    "{% for i in l %}{{ loop.index }}/{{ loop.length }}:{{ i }}{% if loop.first %}F{% endif %}{% if loop.last %}L{% endif %} {% endfor %}",
    "{% for i in 'аб' %}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ i }}{{ loop.previtem }}|{{ loop.nextitem }};{% endfor %}",
    "{% for k in d %}{{ k }}={{ d[k] }};{% else %}empty{% endfor %}{% for k in [] %}x{% else %}empty{% endfor %}{% for k in missing %}x{% else %}none{% endfor %}",
    "{% for r in rows if r.v %}{{ loop.index }}:{{ r.name }}={{ r.v }} {% endfor %}",
    "{% for a, b in pairs %}{{ a }}{{ b }}{% endfor %}{% for i in l %}{% for j in [1, 2] %}{{ loop.index }}{% endfor %}{{ loop.index }}{% endfor %}",
    "{% for x in [1, 2] %}{{ x }}{% endfor %}{{ x }}",
    "{% for i in x %}{% endfor %}",
    "{% if x > 5 %}big{% elif x > 2 %}mid{% else %}small{% endif %}{% if n %}A{% elif e %}B{% elif c %}C{% endif %}",
    "{% if x %}{% if y > 0 %}pos{% else %}{% if z %}z{% else %}neg{% endif %}{% endif %}{% endif %}",
    "{% if x: %}colon{% endif %}{{ loop }}",
    # whitespace control, comments, raw, newlines
    "a  {%- if true -%}  b  {%- endif -%}  c\n  {{- 'd' -}}  \n e {# comment #} f {#- c -#} g",
    "line\n",
    "two\n\n",
    "crlf\r\nline\r\n",
    "{% for i in [1, 2] %}\n  item {{ i }}\n{% endfor %}\n",
    "{% for i in [1, 2] -%}\n  item {{ i }}\n{%- endfor %}\nend",
    "{%+ if true +%} x {%+ endif +%}|{{+ 1 }}|{{ 1 -}} \u3000 y",
    "{# multi\nline\ncomment #}after{#- x -#}  \n  tail",
    "{% raw %}{{ not }} {% if %}{% endraw %}|{%- raw -%}  {{ x }}  {%- endraw -%}  |",
    "{{ '}}' }} {{ '{{' }} {{ {'a': {'b': 1}} }}",
    "{{ имя }}|{{ имя1 }}|{{ d.ключ }}|{{ имя|upper }}",
    "tail{#",
    "tail {#-",
    "x{% raw %}",
    "x{% raw %}y",
    "{",
    "{{ x }",
    "{% if x %}unclosed",
    "{{ x }}{% endif %}",
    "{# unclosed",
    "{% for %}{% endfor %}",
    "{{ }}",
    "{{ 1 + }}",
    "{{ 'unterminated }}",
    "{{ x ! y }}",
    "{{ '\\x4' }}",
]

STRICT = [
    "{{ x }} {{ x is defined }} {{ missing is defined }} {{ missing|default('d') }} {{ missing is none }}",
    "{{ missing }}",
    "{{ d.zz }}",
    "{% if missing %}x{% endif %}",
    "{% for i in missing %}{% endfor %}",
    "{{ missing ~ 'a' }}",
    "{{ missing|length }}",
    "{{ missing == 1 }}",
    "{{ missing|upper }}",
    "SELECT * FROM t WHERE ts >= '{{ period_start }}' AND ts < '{{ period_finish }}'",
]

STRICT_VARS = {"x": 1, "d": {"a": 1}, "period_start": "2024-11-02T14:00:00", "period_finish": "2024-11-02T14:10:00"}

OUTSIDE = [
    "{% set x = 1 %}",
    "{% macro m() %}{% endmacro %}",
    "{% block b %}{% endblock %}",
    "{% with a = 1 %}{% endwith %}",
    "{% filter upper %}x{% endfilter %}",
    "{{ x|title }}",
    "{{ x is mapping }}",
    "{{ range(3) }}",
    "{{ s.upper() }}",
    "{{ (1, 2) }}",
    "{{ 1 < x < 3 }}",
    "{% for i in l recursive %}{% endfor %}",
]


class Runner:
    def __init__(self, tmp):
        self.tmp = tmp
        self.n = 0

    def c_render(self, text, variables, strict=False):
        self.n += 1
        tpath = os.path.join(self.tmp, "t%d.j2" % self.n)
        vpath = os.path.join(self.tmp, "v%d.json" % self.n)
        with open(tpath, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        with open(vpath, "w", encoding="utf-8") as f:
            json.dump(to_json(variables), f, ensure_ascii=False)
        cmd = [TOOL] + (["--strict"] if strict else []) + [tpath, vpath]
        r = subprocess.run(cmd, capture_output=True, timeout=60)
        os.unlink(tpath)
        os.unlink(vpath)
        err = r.stderr.decode("utf-8", "replace").strip()
        # a sanitizer report (leak, UB) or a crash never counts as a clean error
        if "Sanitizer" in err or "runtime error:" in err or r.returncode not in (0, 1):
            return ("crash", "exit %d: %s" % (r.returncode, err))
        if r.returncode == 0:
            return ("ok", r.stdout)
        return ("error", err)


def py_render(env, text, variables):
    try:
        return ("ok", env.from_string(text).render(**variables).encode("utf-8"))
    except Exception as e:  # Jinja2 raising is an expected outcome too
        return ("error", "%s: %s" % (type(e).__name__, e))


def compare(runner, group, name, text, variables, mismatches, strict=False):
    want = py_render(STRICT_ENV if strict else ENV, text, variables)
    got = runner.c_render(text, variables, strict)
    same = want == got if want[0] == "ok" else got[0] == "error"
    if not same:
        mismatches.append((group, name, text, want, got))
    return same


def find_message_templates(node, inside_alerter=False):
    """message_template values under alerter/alerters params, recursively."""
    found = []
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "message_template" and inside_alerter and isinstance(v, str):
                found.append(v)
            else:
                found.extend(find_message_templates(v, inside_alerter or k in ("alerter", "alerters")))
    elif isinstance(node, list):
        for v in node:
            found.extend(find_message_templates(v, inside_alerter))
    return found


def corpus_templates():
    out = []
    for root, _dirs, files in os.walk(CORPUS):
        for fn in sorted(files):
            if not (fn.endswith(".yaml") or fn.endswith(".yml") or fn.endswith(".yaml.template")):
                continue
            path = os.path.join(root, fn)
            with open(path, encoding="utf-8") as f:
                try:
                    docs = list(yaml.safe_load_all(f))
                except yaml.YAMLError:
                    continue
            for doc in docs:
                for i, t in enumerate(find_message_templates(doc)):
                    out.append(("%s#%d" % (os.path.relpath(path, CORPUS), i), t))
    return sorted(out)


# ---- generated expressions ----

GEN_VARS = {
    "x": 7, "y": -3, "z": 0, "f": 2.5, "g": 0.1, "h": -0.0, "big": 1e16, "tiny": 1e-05,
    "s": "abc", "u": "Привет", "e": "", "n": None, "b": True, "c": False,
    "l": [1, "a", None], "d": {"a": 1, "b": "x"}, "inf": float("inf"),
}
INT_LITS = ["0", "1", "2", "3", "5", "10"]
FLOAT_LITS = ["0.5", "2.25", "0.1", "1e-05", "1.5e3", "3.0", "0.0"]
STR_LITS = ["'a'", "'Привет'", "\"it's\"", "''", "'%s!'", "'10'", "' x '", "'2.5'"]
NUM_NAMES = ["x", "y", "z", "f", "g", "h", "big", "tiny", "b", "inf"]
OTHER_NAMES = ["s", "u", "e", "n", "c", "l", "d", "missing"]
FILTERS = ["round", "round(1)", "round(2)", "abs", "float", "default('dd')", "default(0, true)",
           "length", "upper", "lower", "trim", "join('-')", "replace('a', 'b')", "d(none)",
           "datetime_format", "string_fmt"]


class Gen:
    def __init__(self, seed):
        self.r = random.Random(seed)

    def leaf_num(self):
        k = self.r.random()
        if k < 0.35:
            return self.r.choice(INT_LITS)
        if k < 0.6:
            return self.r.choice(FLOAT_LITS)
        return self.r.choice(NUM_NAMES)

    def leaf(self):
        k = self.r.random()
        if k < 0.45:
            return self.leaf_num()
        if k < 0.65:
            return self.r.choice(STR_LITS)
        if k < 0.75:
            return self.r.choice(["true", "false", "none", "True", "None"])
        if k < 0.8:
            return self.r.choice(["[1, 2]", "['a', none]", "{'a': 1}", "[]"])
        return self.r.choice(OTHER_NAMES)

    def num(self, depth):
        """A numeric expression whose integers stay far inside 64 bits."""
        if depth == 0 or self.r.random() < 0.3:
            if self.r.random() < 0.15:
                return "(%s ** %d)" % (self.r.choice(INT_LITS + FLOAT_LITS + NUM_NAMES), self.r.randint(0, 2))
            return self.leaf_num()
        op = self.r.choice(["+", "-", "*", "/", "//", "%"])
        return "(%s %s %s)" % (self.num(depth - 1), op, self.num(depth - 1))

    def expr(self, depth):
        if depth == 0 or self.r.random() < 0.2:
            return self.leaf()
        k = self.r.randrange(11)
        a = lambda: self.expr(depth - 1)
        if k == 0:
            return self.num(depth)
        if k == 1:
            op = self.r.choice(["+", "-", "/", "//", "%"])
            return "(%s %s %s)" % (a(), op, a())
        if k == 2:
            # repetition only with small literal counts
            return "(%s * %s)" % (self.r.choice([a(), self.r.choice(STR_LITS)]), self.r.choice(INT_LITS[:4]))
        if k == 3:
            return "(%s ~ %s)" % (a(), a())
        if k == 4:
            return "(%s %s %s)" % (a(), self.r.choice(["==", "!=", "<", "<=", ">", ">="]), a())
        if k == 5:
            return "(%s %s %s)" % (a(), self.r.choice(["and", "or"]), a())
        if k == 6:
            return self.r.choice(["(not %s)", "(-%s)"]) % a()
        if k == 7:
            return "(%s %s %s)" % (a(), self.r.choice(["in", "not in"]), self.r.choice(["s", "u", "l", "d", "'abc'", "[1, 'a']", "missing"]))
        if k == 8:
            flt = self.r.choice(FILTERS)
            if flt == "string_fmt":
                return "(%s|format(%s))" % (self.r.choice(["'%s'", "'%.2f'", "'%d'", "'%5.1f|%s'", "'%r'", "'%x'"]), ", ".join(a() for _ in range(self.r.choice([1, 1, 2]))))
            if flt in ("float", "abs") or self.r.random() < 0.5:
                return "(%s|%s)" % (a(), flt)
            return "(%s|%s)" % (self.leaf(), flt)
        if k == 9:
            return "(%s|int)" % self.leaf()
        if k == 10:
            t = self.r.choice(["defined", "not defined", "none", "not none", "number", "string"])
            return "(%s is %s)" % (a(), t)
        return self.leaf()


def main():
    if not os.access(TOOL, os.X_OK):
        print("template_render not built at %s" % TOOL)
        return 1
    mismatches = []
    counts = {}
    with tempfile.TemporaryDirectory() as tmp:
        runner = Runner(tmp)

        def tally(group, ok, jinja_error=False):
            c = counts.setdefault(group, {"cases": 0, "match": 0, "jinja_errors": 0})
            c["cases"] += 1
            c["match"] += ok
            c["jinja_errors"] += jinja_error

        # (a) corpus
        if os.path.isdir(CORPUS):
            templates = corpus_templates()
            if not templates:
                mismatches.append(("corpus", "-", "", "message_template found", "none found"))
            for name, text in templates:
                for set_name, variables in CORPUS_SETS:
                    want = py_render(ENV, text, variables)
                    ok = compare(runner, "corpus", "%s with %s" % (name, set_name), text, variables, mismatches)
                    tally("corpus", ok, want[0] == "error")
            counts.setdefault("corpus", {"cases": 0, "match": 0, "jinja_errors": 0})["templates"] = len(templates)
        else:
            print("corpus: SKIPPED, %s is absent" % os.path.normpath(CORPUS))

        # (b) hand-written
        for i, text in enumerate(HAND):
            want = py_render(ENV, text, HAND_VARS)
            tally("hand", compare(runner, "hand", "hand[%d]" % i, text, HAND_VARS, mismatches), want[0] == "error")

        # (c) generated
        gen = Gen(1234)
        for i in range(260):
            text = "{{ %s }}" % gen.expr(3)
            want = py_render(ENV, text, GEN_VARS)
            tally("generated", compare(runner, "generated", "gen[%d]" % i, text, GEN_VARS, mismatches), want[0] == "error")

        # strict mode
        for i, text in enumerate(STRICT):
            want = py_render(STRICT_ENV, text, STRICT_VARS)
            tally("strict", compare(runner, "strict", "strict[%d]" % i, text, STRICT_VARS, mismatches, strict=True), want[0] == "error")

        # outside the subset: refused at compile time
        for i, text in enumerate(OUTSIDE):
            got = runner.c_render(text, HAND_VARS)
            ok = got[0] == "error" and "compile error" in got[1] and "not supported" in got[1]
            if not ok:
                mismatches.append(("outside", "outside[%d]" % i, text, ("error", "compile error: ... not supported"), got))
            tally("outside", ok)

    for group, c in counts.items():
        extra = " from %d templates" % c["templates"] if "templates" in c else ""
        print("%-9s %4d cases%s: %4d match, %4d mismatch (%d where Jinja2 raises)" % (
            group, c["cases"], extra, c["match"], c["cases"] - c["match"], c["jinja_errors"]))
    for group, name, text, want, got in mismatches:
        print("MISMATCH %s %s\n  template: %r\n  jinja2:   %r\n  c:        %r" % (group, name, text, want, got))
    total = sum(c["cases"] for c in counts.values())
    print("%d passed, %d failed" % (total - len(mismatches), len(mismatches)))
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
