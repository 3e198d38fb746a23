#define _GNU_SOURCE
#include "CZenMLSystem.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

int czenml_spawn(const char *path, char *const argv[], char *const envp[], const char *cwd,
                 int stdin_fd, int stdout_fd, int stderr_fd, pid_t *pid) {
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attributes;
    int result = posix_spawn_file_actions_init(&actions);
    if (result != 0) return result;
    result = posix_spawnattr_init(&attributes);
    if (result != 0) {
        posix_spawn_file_actions_destroy(&actions);
        return result;
    }
    sigset_t empty, all;
    sigemptyset(&empty);
    sigfillset(&all);
    short flags = POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
    if ((result = posix_spawnattr_setflags(&attributes, flags)) != 0) goto done;
    if ((result = posix_spawnattr_setpgroup(&attributes, 0)) != 0) goto done;
    if ((result = posix_spawnattr_setsigmask(&attributes, &empty)) != 0) goto done;
    if ((result = posix_spawnattr_setsigdefault(&attributes, &all)) != 0) goto done;
    if ((result = posix_spawn_file_actions_adddup2(&actions, stdin_fd, 0)) != 0) goto done;
    if ((result = posix_spawn_file_actions_adddup2(&actions, stdout_fd, 1)) != 0) goto done;
    if ((result = posix_spawn_file_actions_adddup2(&actions, stderr_fd, 2)) != 0) goto done;
    if ((result = posix_spawn_file_actions_addclosefrom_np(&actions, 3)) != 0) goto done;
    if (cwd != NULL && (result = posix_spawn_file_actions_addchdir_np(&actions, cwd)) != 0) goto done;
    result = posix_spawn(pid, path, &actions, &attributes, argv, envp);
done:
    posix_spawnattr_destroy(&attributes);
    posix_spawn_file_actions_destroy(&actions);
    return result;
}

int czenml_pidfd_open(pid_t pid) {
#ifdef SYS_pidfd_open
    long fd = syscall(SYS_pidfd_open, pid, 0);
    return fd < 0 ? -1 : (int)fd;
#else
    (void)pid;
    return -1;
#endif
}

int czenml_pipe(int fds[2], int flags) {
    return pipe2(fds, flags);
}

int czenml_syncfs(int fd) {
    return syncfs(fd);
}

int czenml_memory_file(const char *name, const void *data, size_t length) {
    int fd = memfd_create(name, MFD_CLOEXEC);
    if (fd < 0) return -1;
    const char *bytes = (const char *)data;
    size_t written = 0;
    while (written < length) {
        ssize_t n = write(fd, bytes + written, length - written);
        if (n < 0) {
            if (errno == EINTR) continue;
            int saved = errno;
            close(fd);
            errno = saved;
            return -1;
        }
        written += (size_t)n;
    }
    if (lseek(fd, 0, SEEK_SET) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

void *czenml_open_library(const char *const *candidates, size_t count, const char *const *names, void **addresses,
                          size_t name_count, const char *label, char *error, size_t error_size) {
    void *library = NULL;
    char first_error[512] = "";
    for (size_t i = 0; i < count && !library; i++) {
        library = dlopen(candidates[i], RTLD_NOW | RTLD_LOCAL);
        if (!library && i == 0) {
            const char *reason = dlerror();
            snprintf(first_error, sizeof first_error, "%s", reason ? reason : "unknown error");
        }
    }
    const char *first = count ? candidates[0] : label;
    if (!library) {
        snprintf(error, error_size, "%s could not be loaded: %s", first, first_error);
        return NULL;
    }
    for (size_t i = 0; i < name_count; i++) {
        addresses[i] = dlsym(library, names[i]);
        if (!addresses[i]) {
            snprintf(error, error_size, "%s has no function %s (too old a %s?)", first, names[i], label);
            dlclose(library);
            return NULL;
        }
    }
    return library;
}

int czenml_probe_library(const char *const *candidates, size_t count, const char *const *names, size_t name_count,
                         const char *label, char *error, size_t error_size) {
    void **addresses = calloc(name_count ? name_count : 1, sizeof *addresses);
    if (!addresses) {
        snprintf(error, error_size, "out of memory");
        return -1;
    }
    void *library = czenml_open_library(candidates, count, names, addresses, name_count, label, error, error_size);
    free(addresses);
    if (!library) return -1;
    dlclose(library);
    return 0;
}
