/* file.c: whole-file reads, read-only mmap, atomic writes (see file.h). */
#include "core/file.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

slm_status slm_file_read_all(const char *path, char **data, size_t *len, slm_err *err) {
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return slm_err_set(err, SLM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf) {
        fclose(f);
        return slm_err_set(err, SLM_ERR_NOMEM, "%s: out of memory", path);
    }
    for (;;) {
        if (n == cap) {
            cap *= 2;
            char *nb = realloc(buf, cap + 1);
            if (!nb) {
                free(buf);
                fclose(f);
                return slm_err_set(err, SLM_ERR_NOMEM, "%s: out of memory reading %zu bytes", path, cap);
            }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return slm_err_set(err, SLM_ERR_IO, "%s: read error after %zu bytes", path, n);
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return SLM_OK;
}

slm_status slm_mmap_open(const char *path, slm_mmap *map, slm_err *err) {
    map->data = NULL;
    map->size = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return slm_err_set(err, SLM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return slm_err_set(err, SLM_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return slm_err_set(err, SLM_ERR_IO, "%s: not a regular file", path);
    }
    if (st.st_size > 0) {
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            close(fd);
            return slm_err_set(err, SLM_ERR_IO, "%s: cannot mmap: %s", path, strerror(errno));
        }
        map->data = p;
        map->size = (size_t)st.st_size;
    }
    close(fd);
    return SLM_OK;
}

void slm_mmap_close(slm_mmap *map) {
    if (map->data) munmap(map->data, map->size);
    map->data = NULL;
    map->size = 0;
}

slm_status slm_atomic_open(slm_atomic_file *af, const char *path, slm_err *err) {
    memset(af, 0, sizeof *af);
    size_t n = strlen(path) + 32;
    af->path = strdup(path);
    af->tmp_path = malloc(n);
    if (!af->path || !af->tmp_path) {
        slm_atomic_abort(af);
        return slm_err_set(err, SLM_ERR_NOMEM, "%s: out of memory", path);
    }
    snprintf(af->tmp_path, n, "%s.tmp.%ld", path, (long)getpid());
    af->f = fopen(af->tmp_path, "wb");
    if (!af->f) {
        slm_status s = slm_err_set(err, SLM_ERR_IO, "%s: cannot create: %s", af->tmp_path, strerror(errno));
        slm_atomic_abort(af);
        return s;
    }
    return SLM_OK;
}

static void fsync_parent_dir(const char *path) {
    char *copy = strdup(path);
    if (!copy) return;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd); /* best effort: some filesystems refuse fsync on a directory */
        close(fd);
    }
    free(copy);
}

slm_status slm_atomic_commit(slm_atomic_file *af, slm_err *err) {
    slm_status s = SLM_OK;
    if (fflush(af->f) != 0 || ferror(af->f))
        s = slm_err_set(err, SLM_ERR_IO, "%s: write failed: %s", af->tmp_path, strerror(errno));
    else if (fsync(fileno(af->f)) != 0)
        s = slm_err_set(err, SLM_ERR_IO, "%s: fsync failed: %s", af->tmp_path, strerror(errno));
    if (fclose(af->f) != 0 && s == SLM_OK)
        s = slm_err_set(err, SLM_ERR_IO, "%s: close failed: %s", af->tmp_path, strerror(errno));
    af->f = NULL;
    if (s == SLM_OK && rename(af->tmp_path, af->path) != 0)
        s = slm_err_set(err, SLM_ERR_IO, "cannot rename %s to %s: %s", af->tmp_path, af->path,
                        strerror(errno));
    if (s == SLM_OK) fsync_parent_dir(af->path);
    slm_atomic_abort(af); /* removes the temp file if it still exists, frees the names */
    return s;
}

void slm_atomic_abort(slm_atomic_file *af) {
    if (af->f) fclose(af->f);
    if (af->tmp_path) unlink(af->tmp_path);
    free(af->tmp_path);
    free(af->path);
    memset(af, 0, sizeof *af);
}
