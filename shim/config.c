/*
 * config.c — the PCSCTAP_* environment, read once (from shim_init(), under
 * pthread_once) through secure_getenv, so that a setuid program is never
 * steered by its caller's environment.  docs/shim.md has the table.
 */
#include "config.h"
#include "shim.h"

#include <stdlib.h>
#include <string.h>

/* "0", "no", "false", "off" are false; anything else set is true. */
static bool
env_bool(const char *name, bool dflt)
{
	const char *v = secure_getenv(name);

	if (!v || !*v)
		return dflt;
	return !(!strcmp(v, "0") || !strcasecmp(v, "no") ||
		 !strcasecmp(v, "false") || !strcasecmp(v, "off"));
}

static const char *
env_str(const char *name)
{
	const char *v = secure_getenv(name);

	return v && *v ? v : NULL;
}

void
shim_config_read(struct shim_config *cfg)
{
	const char *real = env_str(SHIM_ENV_REAL_LIBRARY);

	cfg->trace_path = env_str(SHIM_ENV_TRACE);
	cfg->redact = env_bool(SHIM_ENV_REDACT, true);
	cfg->markers = env_bool(SHIM_ENV_MARKERS, true);
	cfg->verbose = env_bool(SHIM_ENV_VERBOSE, false);
	cfg->delegate = env_str(SHIM_ENV_DELEGATE) != NULL;
	if (real)
		cfg->real_library = real;
	else if (cfg->delegate)
		cfg->real_library = SHIM_DELEGATE_REAL_LIBRARY;
	else
		cfg->real_library = PCSCTAP_REAL_LIBRARY;
}
