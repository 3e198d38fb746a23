// The MariaDB Connector/C client API, for the MySQL/MariaDB metadata store, loaded with dlopen at
// first use.
//
// Why not linked: libmariadb pulls in TLS and compression libraries whose resolution cost every
// zenml-run process several milliseconds at start, while only the MySQL metadata store uses it.
// So the binary does not list libmariadb as needed; zm_load() opens it once and resolves the
// functions below into a table. Only the types and constants of <mysql.h> are used from the
// header (libmariadb-dev: /usr/include/mariadb/mysql.h): calling a mysql_* function directly
// would fail to link. Each zm_mysql_* function is the mysql_* function of the same name.
#ifndef ZENML_CMARIADB_H
#define ZENML_CMARIADB_H

#if __has_include(<mariadb/mysql.h>)
#include <mariadb/mysql.h>
#include <mariadb/errmsg.h>
#elif __has_include(<mysql/mysql.h>)
#include <mysql/mysql.h>
#include <mysql/errmsg.h>
#else
#include <mysql.h>
#include <errmsg.h>
#endif
#include <stddef.h>

/// Loads libmariadb (libmariadb.so.3, else libmariadb.so) and runs mysql_library_init, once per
/// process; safe from any thread. Returns NULL when the library is usable, else why not (static
/// storage), e.g. "libmariadb.so.3 could not be loaded: libmariadb.so.3: cannot open shared
/// object file: ...". Every zm_mysql_* function requires a NULL answer first.
const char *zm_load(void);

/// What zm_load does, from the first of `candidates` that opens, into a table of its own that is
/// closed again: 0 when every function resolves, else -1 with the reason in `error`. For tests.
int zm_load_from(const char *const *candidates, size_t count, char *error, size_t error_size);

MYSQL *zm_mysql_init(MYSQL *mysql);
int zm_mysql_options(MYSQL *mysql, enum mysql_option option, const void *arg);
MYSQL *zm_mysql_real_connect(MYSQL *mysql, const char *host, const char *user, const char *passwd, const char *db,
                             unsigned int port, const char *unix_socket, unsigned long client_flag);
void zm_mysql_close(MYSQL *mysql);
unsigned int zm_mysql_errno(MYSQL *mysql);
const char *zm_mysql_sqlstate(MYSQL *mysql);
const char *zm_mysql_error(MYSQL *mysql);
unsigned long zm_mysql_real_escape_string(MYSQL *mysql, char *to, const char *from, unsigned long length);
int zm_mysql_send_query(MYSQL *mysql, const char *query, unsigned long length);
my_bool zm_mysql_read_query_result(MYSQL *mysql);
int zm_mysql_real_query(MYSQL *mysql, const char *query, unsigned long length);
MYSQL_RES *zm_mysql_store_result(MYSQL *mysql);
void zm_mysql_free_result(MYSQL_RES *result);
my_bool zm_mysql_more_results(MYSQL *mysql);
int zm_mysql_next_result(MYSQL *mysql);
unsigned int zm_mysql_field_count(MYSQL *mysql);
my_ulonglong zm_mysql_insert_id(MYSQL *mysql);
my_ulonglong zm_mysql_affected_rows(MYSQL *mysql);
unsigned int zm_mysql_num_fields(MYSQL_RES *result);
MYSQL_FIELD *zm_mysql_fetch_fields(MYSQL_RES *result);
MYSQL_ROW zm_mysql_fetch_row(MYSQL_RES *result);
unsigned long *zm_mysql_fetch_lengths(MYSQL_RES *result);

#endif
