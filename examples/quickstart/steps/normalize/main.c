/*
 * normalize: min-max normalizes the `value` column of a table and multiplies it by `scale`.
 *
 * A zenml-run step (step contract version 1, see protocol/SPEC.md), in plain C99 with no
 * libraries. run.sh compiles this file and runs it as
 *
 *     normalize REQUEST.json
 *
 * where REQUEST.json is the request the host wrote on stdin. Reads <inputs.table[0]>/data.csv
 * ("id,value" lines after a header), writes <outputs.table>/data.csv with each value replaced
 * by (value - min) / (max - min) * scale, and prints the response on stdout. Logs go to stderr.
 *
 * The request is read with a small JSON walker (json_lookup below) rather than by searching
 * for strings: the host may write keys in any order and escapes '/' as "\/", so only a real
 * (if minimal) parser reads it reliably.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONTRACT_VERSION 1
#define EXIT_FAILED 1
#define EXIT_BAD_REQUEST 2

/* ---- Reporting ------------------------------------------------------------------------- */

static void log_line(const char *format, ...) {
    va_list args;
    fputs("normalize: ", stderr);
    va_start(args, format);
    vfprintf(stderr, format, args);
    va_end(args);
    fputc('\n', stderr);
}

/* Prints a string as a JSON string literal. */
static void print_json_string(FILE *out, const char *text) {
    const unsigned char *p = (const unsigned char *)text;
    fputc('"', out);
    for (; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        case '\n': fputs("\\n", out); break;
        case '\r': fputs("\\r", out); break;
        case '\t': fputs("\\t", out); break;
        default:
            if (*p < 0x20) fprintf(out, "\\u%04x", *p);
            else fputc(*p, out);
        }
    }
    fputc('"', out);
}

/* Reports a failure: the message on stderr, an error response on stdout, then exits. */
static void fail(const char *format, ...) {
    char message[4096];
    va_list args;
    va_start(args, format);
    vsnprintf(message, sizeof message, format, args);
    va_end(args);
    log_line("error: %s", message);
    fputs("{\"status\":\"error\",\"message\":", stdout);
    print_json_string(stdout, message);
    fputs("}\n", stdout);
    exit(EXIT_FAILED);
}

/* ---- A minimal JSON reader ------------------------------------------------------------- */

static const char *skip_ws(const char *p) {
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    return p;
}

static int hex4(const char *p, unsigned *value) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return 0;
    }
    *value = v;
    return 1;
}

/* Appends a code point as UTF-8. */
static char *put_utf8(char *out, unsigned cp) {
    if (cp < 0x80) {
        *out++ = (char)cp;
    } else if (cp < 0x800) {
        *out++ = (char)(0xC0 | (cp >> 6));
        *out++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *out++ = (char)(0xE0 | (cp >> 12));
        *out++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *out++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *out++ = (char)(0xF0 | (cp >> 18));
        *out++ = (char)(0x80 | ((cp >> 12) & 0x3F));
        *out++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *out++ = (char)(0x80 | (cp & 0x3F));
    }
    return out;
}

/*
 * Decodes the JSON string starting at p (which points at its opening quote). Returns a
 * malloc'ed UTF-8 string, or NULL if the string is malformed; *end is set past the closing
 * quote. Handles every escape, including "\/" and \u surrogate pairs.
 */
static char *json_string(const char *p, const char **end) {
    if (*p != '"') return NULL;
    p++;
    char *result = malloc(strlen(p) + 1); /* decoding never makes a string longer */
    if (!result) return NULL;
    char *out = result;
    while (*p && *p != '"') {
        if ((unsigned char)*p < 0x20) break; /* raw control characters are not JSON */
        if (*p != '\\') {
            *out++ = *p++;
            continue;
        }
        p++;
        switch (*p) {
        case '"': *out++ = '"'; break;
        case '\\': *out++ = '\\'; break;
        case '/': *out++ = '/'; break;
        case 'b': *out++ = '\b'; break;
        case 'f': *out++ = '\f'; break;
        case 'n': *out++ = '\n'; break;
        case 'r': *out++ = '\r'; break;
        case 't': *out++ = '\t'; break;
        case 'u': {
            unsigned cp, low;
            if (!hex4(p + 1, &cp)) goto bad;
            p += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF && p[1] == '\\' && p[2] == 'u' && hex4(p + 3, &low)
                && low >= 0xDC00 && low <= 0xDFFF) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                p += 6;
            }
            out = put_utf8(out, cp);
            break;
        }
        default: goto bad;
        }
        p++;
    }
    if (*p != '"') goto bad;
    *out = '\0';
    if (end) *end = p + 1;
    return result;
bad:
    free(result);
    return NULL;
}

/* Returns a pointer just past the JSON value starting at p, or NULL if it is malformed. */
static const char *json_skip(const char *p, int depth) {
    p = skip_ws(p);
    if (depth > 64) return NULL;
    if (*p == '"') {
        const char *end;
        char *text = json_string(p, &end);
        if (!text) return NULL;
        free(text);
        return end;
    }
    if (*p == '{' || *p == '[') {
        char close = *p == '{' ? '}' : ']';
        p = skip_ws(p + 1);
        if (*p == close) return p + 1;
        for (;;) {
            if (close == '}') {
                const char *end;
                char *key = json_string(p, &end);
                if (!key) return NULL;
                free(key);
                p = skip_ws(end);
                if (*p != ':') return NULL;
                p++;
            }
            p = json_skip(p, depth + 1);
            if (!p) return NULL;
            p = skip_ws(p);
            if (*p == close) return p + 1;
            if (*p != ',') return NULL;
            p = skip_ws(p + 1);
        }
    }
    /* A number, true, false or null: a run of these characters. */
    const char *start = p;
    while (*p && strchr("+-.0123456789eEtrufalsn", *p)) p++;
    return p > start ? p : NULL;
}

/*
 * Finds the value at a path such as {"inputs", "table", "0", "path"} in the JSON text at p;
 * object members are matched by (decoded) key in any order, array elements by index.
 * Returns a pointer to the start of the value, or NULL if there is none.
 */
static const char *json_lookup(const char *p, const char *const *path, int count) {
    p = skip_ws(p);
    if (count == 0) return p;
    if (*p == '{') {
        p = skip_ws(p + 1);
        if (*p == '}') return NULL;
        for (;;) {
            const char *end;
            char *key = json_string(p, &end);
            if (!key) return NULL;
            int match = strcmp(key, path[0]) == 0;
            free(key);
            p = skip_ws(end);
            if (*p != ':') return NULL;
            p = skip_ws(p + 1);
            if (match) return json_lookup(p, path + 1, count - 1);
            p = json_skip(p, 0);
            if (!p) return NULL;
            p = skip_ws(p);
            if (*p != ',') return NULL;
            p = skip_ws(p + 1);
        }
    }
    if (*p == '[') {
        char *digits_end;
        long index = strtol(path[0], &digits_end, 10);
        if (*path[0] == '\0' || *digits_end != '\0' || index < 0) return NULL;
        p = skip_ws(p + 1);
        if (*p == ']') return NULL;
        for (long i = 0;; i++) {
            if (i == index) return json_lookup(p, path + 1, count - 1);
            p = json_skip(p, 0);
            if (!p) return NULL;
            p = skip_ws(p);
            if (*p != ',') return NULL;
            p = skip_ws(p + 1);
        }
    }
    return NULL;
}

/* The string at a path, or NULL. */
static char *json_get_string(const char *json, const char *const *path, int count) {
    const char *value = json_lookup(json, path, count);
    return value ? json_string(value, NULL) : NULL;
}

/* The number at a path: returns 1 and sets *number, 0 if absent, -1 if not a number. */
static int json_get_number(const char *json, const char *const *path, int count, double *number) {
    const char *value = json_lookup(json, path, count);
    if (!value) return 0;
    if (!(*value == '-' || (*value >= '0' && *value <= '9'))) return -1;
    char *end;
    errno = 0;
    *number = strtod(value, &end);
    return end > value && errno == 0 ? 1 : -1;
}

/* ---- The step -------------------------------------------------------------------------- */

static char *read_file(const char *path) {
    FILE *file = fopen(path, "rb");
    if (!file) fail("cannot open %s: %s", path, strerror(errno));
    size_t size = 0, capacity = 1 << 16;
    char *data = malloc(capacity);
    size_t n;
    while (data && (n = fread(data + size, 1, capacity - size - 1, file)) > 0) {
        size += n;
        if (capacity - size < 2) data = realloc(data, capacity *= 2);
    }
    if (!data) fail("out of memory reading %s", path);
    if (ferror(file)) fail("cannot read %s: %s", path, strerror(errno));
    fclose(file);
    data[size] = '\0';
    return data;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s REQUEST.json (run.sh passes the request the host wrote on stdin)\n", argv[0]);
        return EXIT_BAD_REQUEST;
    }
    char *request = read_file(argv[1]);

    /* The contract version must be the JSON number 1 (not "1", not 1.0): never guess. */
    static const char *const contract_path[] = {"contract"};
    const char *contract = json_lookup(request, contract_path, 1);
    const char *contract_end = contract ? json_skip(contract, 0) : NULL;
    int contract_length = contract_end ? (int)(contract_end - contract) : 0;
    if (contract_length != 1 || contract[0] != '0' + CONTRACT_VERSION) {
        log_line("error: this step speaks step contract version %d, but the request has contract %.*s",
                 CONTRACT_VERSION, contract_length ? contract_length : 7, contract_length ? contract : "missing");
        return EXIT_BAD_REQUEST;
    }

    static const char *const input_path[] = {"inputs", "table", "0", "path"};
    static const char *const output_path[] = {"outputs", "table", "path"};
    static const char *const scale_path[] = {"config", "scale"};
    char *input_dir = json_get_string(request, input_path, 4);
    char *output_dir = json_get_string(request, output_path, 3);
    if (!input_dir) fail("the request has no inputs.table[0].path");
    if (!output_dir) fail("the request has no outputs.table.path");
    double scale = 1.0;
    if (json_get_number(request, scale_path, 2, &scale) < 0) fail("config.scale must be a number");
    free(request);

    /* Read the input table. */
    char in_name[4096], out_name[4096];
    snprintf(in_name, sizeof in_name, "%s/data.csv", input_dir);
    snprintf(out_name, sizeof out_name, "%s/data.csv", output_dir);
    FILE *in = fopen(in_name, "r");
    if (!in) fail("cannot open the input table %s: %s", in_name, strerror(errno));
    char **ids = NULL;
    double *values = NULL;
    long rows = 0, capacity = 0, line_number = 0;
    char *line = NULL;
    size_t line_capacity = 0;
    while (getline(&line, &line_capacity, in) > 0) {
        line_number++;
        line[strcspn(line, "\r\n")] = '\0';
        if (line_number == 1 || line[0] == '\0') continue; /* the header, blank lines */
        char *comma = strchr(line, ',');
        char *end;
        if (!comma) fail("%s:%ld: expected 'id,value', got '%s'", in_name, line_number, line);
        *comma = '\0';
        double value = strtod(comma + 1, &end);
        if (end == comma + 1 || *end != '\0') fail("%s:%ld: '%s' is not a number", in_name, line_number, comma + 1);
        if (rows == capacity) {
            capacity = capacity ? capacity * 2 : 1024;
            ids = realloc(ids, (size_t)capacity * sizeof *ids);
            values = realloc(values, (size_t)capacity * sizeof *values);
            if (!ids || !values) fail("out of memory");
        }
        ids[rows] = strdup(line);
        values[rows] = value;
        rows++;
    }
    free(line);
    fclose(in);
    if (rows == 0) fail("the input table %s has no rows", in_name);

    double min = values[0], max = values[0];
    for (long i = 1; i < rows; i++) {
        if (values[i] < min) min = values[i];
        if (values[i] > max) max = values[i];
    }
    log_line("read %ld rows from %s (min %g, max %g); scale %g", rows, in_name, min, max, scale);

    /* Write the output table. */
    FILE *out = fopen(out_name, "w");
    if (!out) fail("cannot create %s: %s", out_name, strerror(errno));
    fputs("id,value\n", out);
    for (long i = 0; i < rows; i++) {
        double normalized = max > min ? (values[i] - min) / (max - min) : 0.0;
        fprintf(out, "%s,%.6f\n", ids[i], normalized * scale);
    }
    if (fclose(out) != 0) fail("cannot write %s: %s", out_name, strerror(errno));
    log_line("wrote %s", out_name);

    printf("{\"status\":\"ok\",\"outputs\":{\"table\":{\"properties\":{\"rows\":%ld,\"scale\":%.15g}}}}\n",
           rows, scale);
    return 0;
}
