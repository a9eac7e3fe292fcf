/*
 * outfile.h — the file a command writes (export's capture): never one of
 * its inputs, never through a symbolic link, and only complete.  Data go
 * to a temporary file next to it (0600, O_EXCL|O_NOFOLLOW) that is renamed
 * into place on success, so a failed or interrupted run leaves any earlier
 * file as it was.  "-" is standard output; an existing FIFO or device is
 * written directly (it cannot be replaced).
 */
#pragma once

#include "inputs.h"

#include <stdio.h>

struct outfile {
	const char *path;
	char *tmp;		/* the temporary name, NULL when written directly */
	FILE *f;
};

/**
 * Check @p path and open where to write.  On failure one line
 * "pcsctap CMD: PATH: reason" is printed.
 * @param[in] in the inputs, none of which may be @p path (same inode)
 * @retval PCSCTAP_EXIT_OK, PCSCTAP_EXIT_USAGE (an input, a directory),
 *         PCSCTAP_EXIT_OUTPUT (a symbolic link, cannot create)
 */
int outfile_open(struct outfile *o, const char *cmd, const char *path,
		 const struct tap_input *in);

/**
 * Close the stream (unless its owner did: set o->f to NULL first) and,
 * when @p ok, rename the temporary file into place; otherwise, or when
 * that fails, remove it.
 * @retval 0, or a negative errno: the file is not complete
 */
int outfile_close(struct outfile *o, int ok);
