// One HTTP transfer on a reusable libcurl easy handle. In C because curl_easy_setopt is variadic
// (Swift cannot call it) and the data callbacks are plain C function pointers.
#ifndef CCURL_SHIM_H
#define CCURL_SHIM_H

#include <curl/curl.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
static int zc_perform(CURL *handle, zc_transfer *t) {
    curl_easy_reset(handle);
    t->status = 0;
    t->download_fd = -1;
    t->download_written = 0;
    t->body_offset = 0;
    t->error[0] = 0;
    curl_easy_setopt(handle, CURLOPT_URL, t->url);
    curl_easy_setopt(handle, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(handle, CURLOPT_ERRORBUFFER, t->error);
    curl_easy_setopt(handle, CURLOPT_HTTPHEADER, t->headers);
    curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, zc_write_callback);
    curl_easy_setopt(handle, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(handle, CURLOPT_HEADERFUNCTION, zc_header_callback);
    curl_easy_setopt(handle, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(handle, CURLOPT_CONNECTTIMEOUT, 30L);
    /* A transfer slower than 1 byte/s for this long is a dropped connection: give up and retry. */
    curl_easy_setopt(handle, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(handle, CURLOPT_LOW_SPEED_TIME, t->timeout_seconds > 0 ? t->timeout_seconds : 60L);
    /* A hard cap per request as well: a server that accepts a connection and then answers a few
       bytes at a time never trips the low-speed limit. Requests carry at most one part or one
       file under the multipart threshold, so 15 minutes is generous; a retry follows. */
    curl_easy_setopt(handle, CURLOPT_TIMEOUT, 900L);
    curl_easy_setopt(handle, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(handle, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(handle, CURLOPT_BUFFERSIZE, 512L * 1024L);
    curl_easy_setopt(handle, CURLOPT_UPLOAD_BUFFERSIZE, 512L * 1024L);
    if (strcmp(t->method, "HEAD") == 0) {
        curl_easy_setopt(handle, CURLOPT_NOBODY, 1L);
    } else if (strcmp(t->method, "GET") == 0) {
        curl_easy_setopt(handle, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(t->method, "PUT") == 0) {
        curl_easy_setopt(handle, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(handle, CURLOPT_INFILESIZE_LARGE, (curl_off_t)(t->body ? t->body_length : 0));
    } else if (strcmp(t->method, "POST") == 0) {
        curl_easy_setopt(handle, CURLOPT_POST, 1L);
        curl_easy_setopt(handle, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(t->body ? t->body_length : 0));
    } else {
        curl_easy_setopt(handle, CURLOPT_CUSTOMREQUEST, t->method);
    }
    if (strcmp(t->method, "PUT") == 0 || strcmp(t->method, "POST") == 0) {
        static const unsigned char empty = 0;
        if (!t->body) { t->body = &empty; t->body_length = 0; }
        curl_easy_setopt(handle, CURLOPT_READFUNCTION, zc_read_callback);
        curl_easy_setopt(handle, CURLOPT_READDATA, t);
        curl_easy_setopt(handle, CURLOPT_SEEKFUNCTION, zc_seek_callback);
        curl_easy_setopt(handle, CURLOPT_SEEKDATA, t);
    }
    int code = (int)curl_easy_perform(handle);
    long status = 0;
    if (curl_easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK && status) t->status = status;
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

static void zc_transfer_free(zc_transfer *t) {
    free(t->response);
    free(t->header_text);
    t->response = NULL;
    t->header_text = NULL;
    t->response_length = t->response_capacity = t->header_length = t->header_capacity = 0;
}

#endif
