/*
 * textout.h — output helpers shared by the viewer commands: JSON strings,
 * durations, times, hex, and colour that is used on a terminal only.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/*
 * Write text that came from a trace (reader and process names, extras,
 * details) to a human output: printable ASCII as is, '\\' and '"'
 * escaped, every other byte as \n, \r, \t or \xHH.  So a trace cannot
 * move the cursor, set the terminal's title or begin a line of its own.
 * Every text output of the viewer goes through this (JSON has
 * json_string()).  NULL writes nothing.
 */
void text_put(FILE *f, const char *s);
/* The same for @p n bytes that need not end in a NUL. */
void text_putn(FILE *f, const char *s, size_t n);

/*
 * text_put() into @p buf, for fixed-width columns: cut (between escapes)
 * to fit, always NUL-terminated.  NULL gives "?".  @retval buf
 */
const char *text_escape(const char *s, char *buf, size_t len);

/* Write @p s as a JSON string, quotes included (NULL: null). */
void json_string(FILE *f, const char *s);

/* Write bytes as a JSON string of upper-case hex (NULL: null). */
void json_hex(FILE *f, const uint8_t *data, size_t len);

/* Write up to @p max bytes as hex, "..." after a cut. */
void hex_out(FILE *f, const uint8_t *data, size_t len, size_t max);

/* "850ns", "52.3us", "1.234ms", "2.500s".  @retval buf */
const char *fmt_duration(int64_t ns, char *buf, size_t len);

/* Local wall-clock time "2024-05-01 12:00:00.123456".  @retval buf */
const char *fmt_wall(int64_t wall_ns, char *buf, size_t len);

/*
 * Whether to colour @p f: mode "always" / "never" / "auto" (NULL: auto,
 * which means a terminal and no NO_COLOR in the environment).
 * @retval 1 yes, 0 no, -1 bad mode
 */
int colour_wanted(const char *mode, FILE *f);

/*
 * Parse a time given on the command line in seconds ("1.5", "0.000250").
 * @retval 0, or -EINVAL
 */
int parse_seconds(const char *text, int64_t *ns);

/* Parse a decimal or 0x integer.  @retval 0, or -EINVAL */
int parse_int64(const char *text, int64_t *v);

/*
 * Parse the process id given to @p cmd's --pid (a positive integer), or
 * say "invalid pid" in one line on stderr.  @retval 0, or -EINVAL
 */
int parse_pid(const char *cmd, const char *text, int64_t *pid);

/*
 * The end of command @p cmd: check and close stdout.  When output was lost
 * and @p status is PCSCTAP_EXIT_OK, say so in one line on stderr and
 * return PCSCTAP_EXIT_OUTPUT.  @retval the exit status
 */
int finish_stdout(const char *cmd, int status);

/*
 * A message of the trace layer without the "PATH: " it starts with, for
 * callers that print the path themselves.  @retval a pointer into @p msg
 */
const char *message_without_path(const char *msg, const char *path);

/*
 * Report an unknown option or missing argument (getopt with opterr = 0)
 * as one line.  @retval PCSCTAP_EXIT_USAGE
 */
int bad_option(const char *cmd, char **argv);
