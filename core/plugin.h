/* Optional parts of libdtk that pull in heavy libraries (libcurl, libpq,
 * libmariadb) live in plugins, shared libraries loaded on first use, so a
 * `dtk run` over SQLite does not pay milliseconds of dynamic linking for
 * servers it never talks to. Plugins sit next to libdtk (libdtk-NAME.so),
 * or in $DTK_PLUGIN_DIR. */
#ifndef DTK_PLUGIN_H
#define DTK_PLUGIN_H

#include <stddef.h>

/* The address of symbol in plugin name ("dtk-http" is libdtk-http.so),
 * loading it on first use. Thread-safe. NULL with errstr saying which file
 * could not be loaded and why. The plugin stays loaded until exit. */
void *dtk_plugin_symbol(const char *name, const char *symbol, char *errstr, size_t errstr_size);

#endif
