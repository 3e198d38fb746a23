#include "CMariaDB.h"
#include "CZenMLSystem.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* Each entry: the function's name, and its pointer typed as <mysql.h> declares the function. */
#define ZM_FUNCTIONS(X)                                                                            \
    X(mysql_server_init) X(mysql_init) X(mysql_options) X(mysql_real_connect) X(mysql_close)      \
    X(mysql_errno) X(mysql_sqlstate) X(mysql_error) X(mysql_real_escape_string)                    \
    X(mysql_send_query) X(mysql_read_query_result) X(mysql_real_query) X(mysql_store_result)       \
    X(mysql_free_result) X(mysql_more_results) X(mysql_next_result) X(mysql_field_count)           \
    X(mysql_insert_id) X(mysql_affected_rows) X(mysql_num_fields) X(mysql_fetch_fields)            \
    X(mysql_fetch_row) X(mysql_fetch_lengths)

typedef struct {
#define ZM_FIELD(name) __typeof__(&name) name;
    ZM_FUNCTIONS(ZM_FIELD)
#undef ZM_FIELD
} zm_api;

/* libmariadb.so.3 is the ABI of Connector/C 3.x, whose headers these are; the unversioned name
   is a fallback for systems that only ship the development link. */
static const char *const zm_default_candidates[] = {"libmariadb.so.3", "libmariadb.so"};

static const char *const zm_names[] = {
#define ZM_NAME(name) #name,
    ZM_FUNCTIONS(ZM_NAME)
#undef ZM_NAME
};

#define ZM_COUNT (sizeof zm_names / sizeof *zm_names)

static zm_api zm;
static pthread_once_t zm_once = PTHREAD_ONCE_INIT;
static char zm_error[1024];
static int zm_failed;

static void zm_load_once(void) {
    void *addresses[ZM_COUNT];
    _Static_assert(sizeof(zm_api) == sizeof addresses, "one pointer per function");
    if (!czenml_open_library(zm_default_candidates, sizeof zm_default_candidates / sizeof *zm_default_candidates, zm_names, addresses,
                             ZM_COUNT, "client library", zm_error, sizeof zm_error)) {
        zm_failed = 1;
        return;
    }
    memcpy(&zm, addresses, sizeof addresses);
    /* mysql_library_init must run once, before any thread uses the library. */
    if (zm.mysql_server_init(0, NULL, NULL) != 0) {
        snprintf(zm_error, sizeof zm_error, "mysql_library_init failed");
        zm_failed = 1;
    }
    /* The library stays loaded for the life of the process. */
}

const char *zm_load(void) {
    pthread_once(&zm_once, zm_load_once);
    return zm_failed ? zm_error : NULL;
}

int zm_load_from(const char *const *candidates, size_t count, char *error, size_t error_size) {
    return czenml_probe_library(candidates, count, zm_names, ZM_COUNT, "client library", error, error_size);
}

MYSQL *zm_mysql_init(MYSQL *mysql) { return zm.mysql_init(mysql); }
int zm_mysql_options(MYSQL *mysql, enum mysql_option option, const void *arg) { return zm.mysql_options(mysql, option, arg); }
MYSQL *zm_mysql_real_connect(MYSQL *mysql, const char *host, const char *user, const char *passwd, const char *db,
                             unsigned int port, const char *unix_socket, unsigned long client_flag) {
    return zm.mysql_real_connect(mysql, host, user, passwd, db, port, unix_socket, client_flag);
}
void zm_mysql_close(MYSQL *mysql) { zm.mysql_close(mysql); }
unsigned int zm_mysql_errno(MYSQL *mysql) { return zm.mysql_errno(mysql); }
const char *zm_mysql_sqlstate(MYSQL *mysql) { return zm.mysql_sqlstate(mysql); }
const char *zm_mysql_error(MYSQL *mysql) { return zm.mysql_error(mysql); }
unsigned long zm_mysql_real_escape_string(MYSQL *mysql, char *to, const char *from, unsigned long length) {
    return zm.mysql_real_escape_string(mysql, to, from, length);
}
int zm_mysql_send_query(MYSQL *mysql, const char *query, unsigned long length) { return zm.mysql_send_query(mysql, query, length); }
my_bool zm_mysql_read_query_result(MYSQL *mysql) { return zm.mysql_read_query_result(mysql); }
int zm_mysql_real_query(MYSQL *mysql, const char *query, unsigned long length) { return zm.mysql_real_query(mysql, query, length); }
MYSQL_RES *zm_mysql_store_result(MYSQL *mysql) { return zm.mysql_store_result(mysql); }
void zm_mysql_free_result(MYSQL_RES *result) { zm.mysql_free_result(result); }
my_bool zm_mysql_more_results(MYSQL *mysql) { return zm.mysql_more_results(mysql); }
int zm_mysql_next_result(MYSQL *mysql) { return zm.mysql_next_result(mysql); }
unsigned int zm_mysql_field_count(MYSQL *mysql) { return zm.mysql_field_count(mysql); }
my_ulonglong zm_mysql_insert_id(MYSQL *mysql) { return zm.mysql_insert_id(mysql); }
my_ulonglong zm_mysql_affected_rows(MYSQL *mysql) { return zm.mysql_affected_rows(mysql); }
unsigned int zm_mysql_num_fields(MYSQL_RES *result) { return zm.mysql_num_fields(result); }
MYSQL_FIELD *zm_mysql_fetch_fields(MYSQL_RES *result) { return zm.mysql_fetch_fields(result); }
MYSQL_ROW zm_mysql_fetch_row(MYSQL_RES *result) { return zm.mysql_fetch_row(result); }
unsigned long *zm_mysql_fetch_lengths(MYSQL_RES *result) { return zm.mysql_fetch_lengths(result); }
