/* Between libdtk's HTTP code (util/http.c) and the libcurl plugin
 * (plugins/http_curl.c). Not part of the public API. */
#ifndef DTK_UTIL_HTTP_INTERNAL_H
#define DTK_UTIL_HTTP_INTERNAL_H

#include <stddef.h>

#include "util/http.h"

/* The parts of a URL that masking needs: [scheme://][userinfo@]host[/rest]. */
typedef struct dtk_http_url_parts {
	size_t host;	 /* offset of the host (after "scheme://" and user-info) */
	size_t userinfo; /* offset of the user-info, when has_userinfo */
	int has_userinfo;
	size_t rest; /* offset of the path, query or fragment (strlen when none) */
} dtk_http_url_parts;

dtk_http_url_parts dtk_http_url_split(const char *url);

/* What the plugin exports as `dtk_http_curl`. */
typedef struct dtk_http_impl {
	dtk_http_client *(*client_new)(void);
	void (*client_free)(dtk_http_client **c);
	int (*request)(dtk_http_client *client, const dtk_http_request *req,
		       dtk_http_response *resp, char *errstr, size_t errstr_size);
} dtk_http_impl;

#endif
