// libcurl for the HTTP client of the remote stores, loaded with dlopen at first use.
//
// Why not linked: libcurl pulls in ~30 shared libraries (TLS, Kerberos, LDAP, HTTP/2, ...), and
// resolving them cost every zenml-run process ~11 ms at start, while only bucket stores use it.
// So the binary does not list libcurl as needed; zc_load() opens it once and resolves the
// functions below into a table. Only the types and constants of <curl/curl.h> are used from the
// header: calling a curl_* function directly would fail to link.
//
// One HTTP transfer runs in C because curl_easy_setopt is variadic (Swift cannot call it) and the
// data callbacks are plain C function pointers.
#ifndef CCURL_H
#define CCURL_H

#include <curl/curl.h>
#include <stddef.h>

/// Loads libcurl (libcurl.so.4, else libcurl.so) and runs curl_global_init, once per process;
/// safe from any thread. Returns NULL when libcurl is usable, else why not (static storage), e.g.
/// "libcurl.so.4 could not be loaded: libcurl.so.4: cannot open shared object file: ...".
/// Every zc_curl_* function and zc_perform require a NULL answer first.
const char *zc_load(void);

/// What zc_load does, from the first of `candidates` that opens, into a table of its own that is
/// closed again: 0 when every function resolves, else -1 with the reason in `error`. For tests.
int zc_load_from(const char *const *candidates, size_t count, char *error, size_t error_size);

CURL *zc_curl_easy_init(void);
struct curl_slist *zc_curl_slist_append(struct curl_slist *list, const char *line);
void zc_curl_slist_free_all(struct curl_slist *list);
const char *zc_curl_easy_strerror(CURLcode code);

typedef struct {
    /* Request. */
    const char *method;              /* "GET", "HEAD", "PUT", "POST", "DELETE" */
    const char *url;
    struct curl_slist *headers;
    const unsigned char *body;       /* NULL: no request body */
    size_t body_length;
    const char *download_path;       /* NULL: keep the response body in memory */
    long long download_offset;       /* < 0: replace the file; else write the body at this offset (a range) */
    long long download_written;
    long timeout_seconds;            /* low-speed limit window; 0 = default */
    /* Response (owned by the transfer; free with zc_transfer_free). */
    long status;
    unsigned char *response;
    size_t response_length, response_capacity;
    char *header_text;
    size_t header_length, header_capacity;
    int download_fd;
    int write_failed;
    size_t body_offset;
    char error[CURL_ERROR_SIZE];
} zc_transfer;

/// Runs one transfer on `handle` (reset first, so its connection cache is kept). Returns the curl code.
int zc_perform(CURL *handle, zc_transfer *t);

void zc_transfer_free(zc_transfer *t);

#endif
