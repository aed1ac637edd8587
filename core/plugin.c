#include "plugin.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/fileio.h"

/* The handles of loaded plugins. Process-wide like the dynamic linker's own
 * state that they mirror; guarded by the mutex, and never unloaded. */
#define MAX_PLUGINS 8
static pthread_mutex_t plugins_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
	char name[32];
	void *handle;
} plugins[MAX_PLUGINS];

static void *open_plugin(const char *name, char *errstr, size_t errstr_size)
{
	char path[4200], dir[4096];
	const char *env = getenv("DTK_PLUGIN_DIR");
	Dl_info info;
	void *h = NULL;
	if (env && *env) {
		snprintf(path, sizeof(path), "%s/lib%s.so", env, name);
		if ((h = dlopen(path, RTLD_NOW | RTLD_LOCAL)))
			return h;
	}
	/* next to libdtk itself */
	if (dladdr((void *)dtk_plugin_symbol, &info) && info.dli_fname) {
		dtk_dirname(info.dli_fname, dir, sizeof(dir));
		snprintf(path, sizeof(path), "%s/lib%s.so", dir, name);
		if ((h = dlopen(path, RTLD_NOW | RTLD_LOCAL)))
			return h;
	}
	snprintf(path, sizeof(path), "lib%s.so", name);
	if ((h = dlopen(path, RTLD_NOW | RTLD_LOCAL)))
		return h;
	const char *why = dlerror();
	snprintf(errstr, errstr_size, "cannot load the %s plugin (lib%s.so next to libdtk, or in "
				      "DTK_PLUGIN_DIR): %s",
		 name, name, why ? why : "not found");
	return NULL;
}

void *dtk_plugin_symbol(const char *name, const char *symbol, char *errstr, size_t errstr_size)
{
	void *h = NULL, *sym = NULL;
	pthread_mutex_lock(&plugins_mu);
	size_t i = 0;
	for (; i < MAX_PLUGINS && plugins[i].handle; i++)
		if (strcmp(plugins[i].name, name) == 0) {
			h = plugins[i].handle;
			break;
		}
	if (!h && i < MAX_PLUGINS) {
		h = open_plugin(name, errstr, errstr_size);
		if (h) {
			snprintf(plugins[i].name, sizeof(plugins[i].name), "%s", name);
			plugins[i].handle = h;
		}
	}
	pthread_mutex_unlock(&plugins_mu);
	if (!h)
		return NULL;
	sym = dlsym(h, symbol);
	if (!sym)
		snprintf(errstr, errstr_size, "the %s plugin has no symbol %s", name, symbol);
	return sym;
}
