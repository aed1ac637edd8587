/* Settings of the fleet binaries (cli.md "Environment and files"): every
 * flag is also an environment variable and a key of an optional YAML file
 * (--config FILE); flags beat the environment, which beats the file.
 * `--some-flag` is `DTK_SOME_FLAG` and `some_flag` unless the table says
 * otherwise. Lists repeat or take commas. */
#ifndef DTK_OPTIONS_H
#define DTK_OPTIONS_H

#include <stddef.h>
#include <stdio.h>

typedef enum dtk_opt_kind {
	DTK_OPT_FLAG,	/* no argument; env/file: true/false, 1/0, yes/no */
	DTK_OPT_STRING, /* one value */
	DTK_OPT_LIST,	/* repeatable, comma-separated */
} dtk_opt_kind;

typedef struct dtk_opt_spec {
	const char *name;  /* long flag without dashes: "config-dir" */
	char short_name;   /* or 0 */
	dtk_opt_kind kind;
	const char *env;   /* NULL = DTK_ + upper-cased name with '_' for '-'; "-" = none */
	const char *key;   /* file key; NULL = name with '_' for '-'; "-" = none */
	const char *arg;   /* the argument's name in --help ("DIR") */
	const char *help;
} dtk_opt_spec;

/* Resolved values, one slot per spec (same index). */
typedef struct dtk_opt_value {
	int set;	/* given by flag, environment or file */
	char *str;	/* STRING: owned */
	char **list;	/* LIST: owned, NULL-terminated */
	size_t n;
	int on;		/* FLAG */
	const char *origin; /* "flag", "environment" or the file name, for messages */
} dtk_opt_value;

typedef struct dtk_opts {
	const dtk_opt_spec *specs;
	size_t nspecs;
	dtk_opt_value *values;
	char **positional;
	size_t npositional;
} dtk_opts;

/* Parses argv against specs (argv[0] is the program), then fills what the
 * flags did not from the environment, then from the YAML file named by
 * --config / DTK_CONFIG. "help" and "version" are flags the caller lists.
 * Returns 0, or -1 with errstr naming the flag, variable or file key. */
int dtk_opts_parse(dtk_opts *o, const dtk_opt_spec *specs, size_t nspecs, int argc,
		   char **argv, char *errstr, size_t errstr_size);
void dtk_opts_free(dtk_opts *o);

/* The value of the spec named name (NULL when unknown). */
const dtk_opt_value *dtk_opts_get(const dtk_opts *o, const char *name);

/* 1 when the FLAG setting name is on. */
int dtk_opts_on(const dtk_opts *o, const char *name);
/* The STRING setting name, or def when unset. Borrowed from o. */
const char *dtk_opts_str(const dtk_opts *o, const char *name, const char *def);

/* A positive integer setting, or def when unset; -1 with errstr when the
 * value is not an integer in [min, max]. */
int dtk_opts_int(const dtk_opts *o, const char *name, long def, long min, long max, long *out,
		 char *errstr, size_t errstr_size);

/* The start of a service binary's main: parses argv (messages prefixed with
 * prog), answers --help (usage on stdout) and --version, refuses positional
 * arguments. Returns -1 when main goes on, else the exit code to return
 * (0 after --help/--version, 2 on a usage error, already reported). */
int dtk_opts_start(dtk_opts *o, const dtk_opt_spec *specs, size_t nspecs, int argc,
		   char **argv, const char *prog, void (*usage)(FILE *f));

/* Prints the flag table, each flag with its variable, for --help. */
void dtk_opts_help(const dtk_opt_spec *specs, size_t nspecs, FILE *f);

#endif
