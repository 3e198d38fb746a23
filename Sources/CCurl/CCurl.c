#define CURL_DISABLE_TYPECHECK 1
#include "CCurl.h"
#include "CZenMLSystem.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The libcurl functions zenml-run calls, each typed as <curl/curl.h> declares it (a variadic
   pointer is called exactly like the variadic function). */
#define ZC_FUNCTIONS(X)                                                                            \
    X(curl_global_init) X(curl_easy_init) X(curl_easy_reset) X(curl_easy_setopt)                  \
    X(curl_easy_perform) X(curl_easy_getinfo) X(curl_easy_strerror) X(curl_slist_append)          \
    X(curl_slist_free_all)

typedef struct {
#define ZC_FIELD(name) __typeof__(&name) name;
    ZC_FUNCTIONS(ZC_FIELD)
#undef ZC_FIELD
} zc_api;

static const char *const zc_names[] = {
#define ZC_NAME(name) #name,
    ZC_FUNCTIONS(ZC_NAME)
#undef ZC_NAME
};

/* libcurl.so.4 is the ABI the headers describe (soname 4 since 2006); the unversioned name is a
   fallback for systems that only ship the development link. */
static const char *const zc_default_candidates[] = {"libcurl.so.4", "libcurl.so"};

#define ZC_COUNT (sizeof zc_names / sizeof *zc_names)

static zc_api zc;
static pthread_once_t zc_once = PTHREAD_ONCE_INIT;
static char zc_error[1024];
static int zc_failed;

static void zc_load_once(void) {
    void *addresses[ZC_COUNT];
    _Static_assert(sizeof(zc_api) == sizeof addresses, "one pointer per function");
    if (!czenml_open_library(zc_default_candidates, sizeof zc_default_candidates / sizeof *zc_default_candidates, zc_names, addresses,
                             ZC_COUNT, "libcurl", zc_error, sizeof zc_error)) {
        zc_failed = 1;
        return;
    }
    memcpy(&zc, addresses, sizeof addresses);
    /* curl_global_init is not thread-safe in older libcurl: here it runs once, before any transfer. */
    CURLcode code = zc.curl_global_init(CURL_GLOBAL_DEFAULT);
    if (code != CURLE_OK) {
        snprintf(zc_error, sizeof zc_error, "curl_global_init failed: %s", zc.curl_easy_strerror(code));
        zc_failed = 1;
    }
    /* The library stays loaded for the life of the process (handles live on the client's threads). */
}

const char *zc_load(void) {
    pthread_once(&zc_once, zc_load_once);
    return zc_failed ? zc_error : NULL;
}

int zc_load_from(const char *const *candidates, size_t count, char *error, size_t error_size) {
    return czenml_probe_library(candidates, count, zc_names, ZC_COUNT, "libcurl", error, error_size);
}

CURL *zc_curl_easy_init(void) { return zc.curl_easy_init(); }
struct curl_slist *zc_curl_slist_append(struct curl_slist *list, const char *line) { return zc.curl_slist_append(list, line); }
void zc_curl_slist_free_all(struct curl_slist *list) { zc.curl_slist_free_all(list); }
const char *zc_curl_easy_strerror(CURLcode code) { return zc.curl_easy_strerror(code); }

static int zc_append(unsigned char **buffer, size_t *length, size_t *capacity, const void *data, size_t size) {
    if (*length + size + 1 > *capacity) {
        size_t next = *capacity ? *capacity * 2 : 4096;
        while (next < *length + size + 1) next *= 2;
        unsigned char *grown = (unsigned char *)realloc(*buffer, next);
        if (!grown) return -1;
        *buffer = grown;
        *capacity = next;
    }
    memcpy(*buffer + *length, data, size);
    *length += size;
    (*buffer)[*length] = 0;
    return 0;
}

static size_t zc_write_callback(char *data, size_t size, size_t count, void *context) {
    zc_transfer *t = (zc_transfer *)context;
    size_t total = size * count;
    if (t->download_path && t->status / 100 == 2) {
        if (t->download_fd < 0) {
            int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (t->download_offset < 0 ? O_TRUNC : 0);
            t->download_fd = open(t->download_path, flags, 0644);
            if (t->download_fd < 0) { t->write_failed = 1; return 0; }
        }
        size_t done = 0;
        while (done < total) {
            ssize_t n = t->download_offset < 0
                ? write(t->download_fd, data + done, total - done)
                : pwrite(t->download_fd, data + done, total - done, (off_t)(t->download_offset + t->download_written));
            if (n <= 0) { t->write_failed = 1; return 0; }
            done += (size_t)n;
            t->download_written += n;
        }
        return total;
    }
    /* Error bodies (and everything when there is no download file) stay in memory. */
    if (zc_append(&t->response, &t->response_length, &t->response_capacity, data, total) != 0) return 0;
    return total;
}

static size_t zc_header_callback(char *data, size_t size, size_t count, void *context) {
    zc_transfer *t = (zc_transfer *)context;
    size_t total = size * count;
    /* A status line starts a new header block (100-continue, redirects): keep only the last one. */
    if (total >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        t->header_length = 0;
        long code = 0;
        const char *space = memchr(data, ' ', total);
        if (space) code = strtol(space + 1, NULL, 10);
        t->status = code;
    }
    if (zc_append((unsigned char **)&t->header_text, &t->header_length, &t->header_capacity, data, total) != 0) return 0;
    return total;
}

static size_t zc_read_callback(char *buffer, size_t size, size_t count, void *context) {
    zc_transfer *t = (zc_transfer *)context;
    size_t room = size * count, left = t->body_length - t->body_offset;
    size_t n = left < room ? left : room;
    if (n) memcpy(buffer, t->body + t->body_offset, n);
    t->body_offset += n;
    return n;
}

static int zc_seek_callback(void *context, curl_off_t offset, int origin) {
    zc_transfer *t = (zc_transfer *)context;
    if (origin != SEEK_SET || offset < 0 || (size_t)offset > t->body_length) return CURL_SEEKFUNC_FAIL;
    t->body_offset = (size_t)offset;
    return CURL_SEEKFUNC_OK;
}

/// Runs one transfer on `handle` (reset first, so its connection cache is kept). Returns the curl code.
int zc_perform(CURL *handle, zc_transfer *t) {
    zc.curl_easy_reset(handle);
    t->status = 0;
    t->download_fd = -1;
    t->download_written = 0;
    t->body_offset = 0;
    t->error[0] = 0;
    zc.curl_easy_setopt(handle, CURLOPT_URL, t->url);
    zc.curl_easy_setopt(handle, CURLOPT_NOSIGNAL, 1L);
    zc.curl_easy_setopt(handle, CURLOPT_ERRORBUFFER, t->error);
    zc.curl_easy_setopt(handle, CURLOPT_HTTPHEADER, t->headers);
    zc.curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, zc_write_callback);
    zc.curl_easy_setopt(handle, CURLOPT_WRITEDATA, t);
    zc.curl_easy_setopt(handle, CURLOPT_HEADERFUNCTION, zc_header_callback);
    zc.curl_easy_setopt(handle, CURLOPT_HEADERDATA, t);
    zc.curl_easy_setopt(handle, CURLOPT_CONNECTTIMEOUT, 30L);
    /* A transfer slower than 1 byte/s for this long is a dropped connection: give up and retry. */
    zc.curl_easy_setopt(handle, CURLOPT_LOW_SPEED_LIMIT, 1L);
    zc.curl_easy_setopt(handle, CURLOPT_LOW_SPEED_TIME, t->timeout_seconds > 0 ? t->timeout_seconds : 60L);
    /* A hard cap per request as well: a server that accepts a connection and then answers a few
       bytes at a time never trips the low-speed limit. Requests carry at most one part or one
       file under the multipart threshold, so 15 minutes is generous; a retry follows. */
    zc.curl_easy_setopt(handle, CURLOPT_TIMEOUT, 900L);
    zc.curl_easy_setopt(handle, CURLOPT_TCP_KEEPALIVE, 1L);
    zc.curl_easy_setopt(handle, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    zc.curl_easy_setopt(handle, CURLOPT_BUFFERSIZE, 512L * 1024L);
    zc.curl_easy_setopt(handle, CURLOPT_UPLOAD_BUFFERSIZE, 512L * 1024L);
    if (strcmp(t->method, "HEAD") == 0) {
        zc.curl_easy_setopt(handle, CURLOPT_NOBODY, 1L);
    } else if (strcmp(t->method, "GET") == 0) {
        zc.curl_easy_setopt(handle, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(t->method, "PUT") == 0) {
        zc.curl_easy_setopt(handle, CURLOPT_UPLOAD, 1L);
        zc.curl_easy_setopt(handle, CURLOPT_INFILESIZE_LARGE, (curl_off_t)(t->body ? t->body_length : 0));
    } else if (strcmp(t->method, "POST") == 0) {
        zc.curl_easy_setopt(handle, CURLOPT_POST, 1L);
        zc.curl_easy_setopt(handle, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(t->body ? t->body_length : 0));
    } else {
        zc.curl_easy_setopt(handle, CURLOPT_CUSTOMREQUEST, t->method);
    }
    if (strcmp(t->method, "PUT") == 0 || strcmp(t->method, "POST") == 0) {
        static const unsigned char empty = 0;
        if (!t->body) { t->body = &empty; t->body_length = 0; }
        zc.curl_easy_setopt(handle, CURLOPT_READFUNCTION, zc_read_callback);
        zc.curl_easy_setopt(handle, CURLOPT_READDATA, t);
        zc.curl_easy_setopt(handle, CURLOPT_SEEKFUNCTION, zc_seek_callback);
        zc.curl_easy_setopt(handle, CURLOPT_SEEKDATA, t);
    }
    int code = (int)zc.curl_easy_perform(handle);
    long status = 0;
    if (zc.curl_easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK && status) t->status = status;
    if (t->download_fd >= 0) {
        if (close(t->download_fd) != 0) t->write_failed = 1;
        t->download_fd = -1;
    } else if (t->download_path && t->download_offset < 0 && code == CURLE_OK && t->status / 100 == 2) {
        /* An empty body never calls the write callback: still create the (empty) file. */
        int fd = open(t->download_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || close(fd) != 0) t->write_failed = 1;
    }
    return code;
}

void zc_transfer_free(zc_transfer *t) {
    free(t->response);
    free(t->header_text);
    t->response = NULL;
    t->header_text = NULL;
    t->response_length = t->response_capacity = t->header_length = t->header_capacity = 0;
}

