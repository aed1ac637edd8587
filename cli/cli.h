/* The `dtk` command line: one file per group of commands. */
#ifndef DTK_CLI_H
#define DTK_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "check.h"
#include "config/config.h"
#include "report.h"

int cmd_run(int argc, char **argv);
int cmd_run_tagged(int argc, char **argv);
int cmd_validate(int argc, char **argv);
int cmd_list_metrics(int argc, char **argv);
int cmd_list_collectors(int argc, char **argv);
int cmd_list_detectors(int argc, char **argv);
int cmd_list_alerters(int argc, char **argv);
int cmd_init(int argc, char **argv);
int cmd_init_project(int argc, char **argv);
int cmd_load_history(int argc, char **argv);

#endif
