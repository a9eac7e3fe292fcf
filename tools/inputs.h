/*
 * inputs.h — the traces a viewer command reads: opening one or more of
 * them with one clear error line and a documented exit code, and the
 * names and roles of the processes they recorded.
 */
#pragma once

#include "trace.h"

#include <stdint.h>

#define TAP_MAX_FILES 16

struct tap_input;

/**
 * Open the traces named in @p paths (or $PCSCTAP_TRACE when @p n is 0).
 * On failure one line "pcsctap CMD: PATH: reason" is printed on stderr.
 * @param[in] cmd the subcommand, for messages
 * @retval PCSCTAP_EXIT_OK, or the exit status to return
 */
int tap_input_open(struct tap_input **out, const char *cmd, char **paths, int n);
void tap_input_close(struct tap_input *in);
int tap_input_count(const struct tap_input *in);
struct trace_reader *tap_input_reader(const struct tap_input *in, int file);
const char *tap_input_path(const struct tap_input *in, int file);

/* The base name of the process's executable, or "?" when not recorded. */
const char *tap_process_name(const struct tap_input *in, int file, int64_t pid);

/* The role the process recorded ("shim", "driver"), or NULL. */
const char *tap_process_role(const struct tap_input *in, int file, int64_t pid);

/*
 * Report a reader failure during iteration (one line) and return the exit
 * status for it.
 */
int tap_input_fail(struct tap_input *in, const char *cmd, int file, int rc);
