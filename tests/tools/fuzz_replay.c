/*
 * fuzz_replay.c — runs a libFuzzer target over every file of a corpus
 * directory, so that the gcc build's test suite exercises the fuzz targets
 * (libFuzzer itself needs clang).  TAP: one line per input.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
main(int argc, char **argv)
{
	struct dirent **names = NULL;
	int n, done = 0, rc = 1;

	if (argc != 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
		return 1;
	}
	n = scandir(argv[1], &names, NULL, alphasort);
	if (n < 0) {
		perror(argv[1]);
		return 1;
	}
	for (int i = 0; i < n; i++) {
		char path[4096];
		uint8_t *buf = NULL;
		long size;
		FILE *f;

		if (names[i]->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", argv[1], names[i]->d_name);
		f = fopen(path, "rb");
		if (!f || fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0) {
			printf("not ok %d - %s: unreadable\n", ++done, names[i]->d_name);
			if (f)
				fclose(f);
			goto out;
		}
		rewind(f);
		buf = malloc((size_t)size + 1);
		if (!buf || fread(buf, 1, (size_t)size, f) != (size_t)size) {
			fclose(f);
			free(buf);
			goto out;
		}
		fclose(f);
		/* A failed check aborts: the test then fails on the signal. */
		LLVMFuzzerTestOneInput(buf, (size_t)size);
		free(buf);
		printf("ok %d - %s\n", ++done, names[i]->d_name);
	}
	printf("1..%d\n", done);
	rc = done > 0 ? 0 : 1;
out:
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}
