// The MariaDB Connector/C client API (libmariadb-dev: /usr/include/mariadb/mysql.h), for the
// MySQL/MariaDB metadata store.
#ifndef ZENML_CMARIADB_SHIM_H
#define ZENML_CMARIADB_SHIM_H
#include <mysql.h>
#include <errmsg.h>
#endif
