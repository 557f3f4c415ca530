/* Archive output (runs as the user): pax from libarchive, compressed here with libzstd. */
#include "pgsmb-userwork-archive-internal.h"

/* ---- archive output: pax from libarchive, compressed here with libzstd ----
 * libarchive's zstd filter offers threads but not zstd's job size, and its multithreaded buffers
 * grow with the window (~70 MiB for two threads). Compressing here, with small jobs, keeps memory
 * bounded and lets the workers compress while the walk waits on the disk. The output is ordinary
 * zstd frames, read by any zstd decoder. */

/* Job size of each compression worker: small enough to bound memory (a few jobs in flight, each
 * with its input, output and overlap), large enough that the job's overlap costs little ratio. */
#define ZSTD_JOB_BYTES (2 * 1024 * 1024)
/* Automatic threads stop here: each worker costs ~6 MiB, and four compress faster than a
 * gigabit link carries. An explicit compression_threads is taken as it is. */
#define ZSTD_AUTO_THREADS_MAX 4
/* What libarchive hands the compressor at once: tar headers and data, gathered. */
#define PAX_BLOCK_BYTES (256 * 1024)


/* Feed `in` to the compressor with `mode`; write whatever output it gives. With ZSTD_e_end,
 * runs until the frame is complete. */
static int zstd_out_push(struct archive *a, struct zstd_out *z, const void *data, size_t len,
                         ZSTD_EndDirective mode) {
        ZSTD_inBuffer in = { data, len, 0 };
        for (;;) {
                ZSTD_outBuffer out = { z->buf, z->cap, 0 };
                size_t left = ZSTD_compressStream2(z->cctx, &out, &in, mode);
                if (ZSTD_isError(left)) {
                        archive_set_error(a, EIO, "zstd: %s", ZSTD_getErrorName(left));
                        return ARCHIVE_FATAL;
                }
                if (out.pos > 0) {
                        int r = write_all(z->fd, z->buf, out.pos);
                        if (r < 0) {
                                archive_set_error(a, -r, "cannot write the archive: %s",
                                                  strerror(-r));
                                return ARCHIVE_FATAL;
                        }
                }
                if (mode == ZSTD_e_end ? left == 0 : in.pos == in.size)
                        return ARCHIVE_OK;
        }
}

static la_ssize_t zstd_out_write(struct archive *a, void *userdata, const void *buf, size_t len) {
        if (zstd_out_push(a, userdata, buf, len, ZSTD_e_continue) != ARCHIVE_OK)
                return -1;
        return (la_ssize_t)len;
}

static int zstd_out_close(struct archive *a, void *userdata) {
        return zstd_out_push(a, userdata, NULL, 0, ZSTD_e_end);
}

void pgsmb_zstd_out_done(struct zstd_out *z) {
        ZSTD_freeCCtx(z->cctx);
        free(z->buf);
        *z = (struct zstd_out){ .fd = -1 };
}

/* threads: 0 = one worker per online CPU (zstd -T0), at most ZSTD_AUTO_THREADS_MAX; a libzstd
 * without threads compresses in the calling thread. */
int pgsmb_zstd_out_init(struct zstd_out *z, const struct profile_compress *c, int fd, char *err,
                         size_t errlen) {
        int level = c && c->level ? c->level : 3;
        long threads = c && c->threads > 0 ? c->threads : sysconf(_SC_NPROCESSORS_ONLN);
        if (!(c && c->threads > 0) && threads > ZSTD_AUTO_THREADS_MAX)
                threads = ZSTD_AUTO_THREADS_MAX;
        if (threads < 1)
                threads = 1;
        ZSTD_bounds lb = ZSTD_cParam_getBounds(ZSTD_c_compressionLevel);
        if (ZSTD_isError(lb.error) || level < lb.lowerBound || level > lb.upperBound)
                return fail(err, errlen, -EINVAL, "zstd compression level %d is not supported",
                            level);
        *z = (struct zstd_out){ .fd = fd, .cap = ZSTD_CStreamOutSize() };
        z->cctx = ZSTD_createCCtx();
        z->buf = malloc(z->cap);
        if (!z->cctx || !z->buf) {
                pgsmb_zstd_out_done(z);
                return fail(err, errlen, -ENOMEM, "out of memory");
        }
        ZSTD_bounds wb = ZSTD_cParam_getBounds(ZSTD_c_nbWorkers);
        if (!ZSTD_isError(wb.error) && wb.upperBound < threads)
                threads = wb.upperBound; /* 0 without ZSTD_MULTITHREAD */
        if (ZSTD_isError(ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_compressionLevel, level)) ||
            ZSTD_isError(ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_checksumFlag, 1)) ||
            (threads > 0 &&
             (ZSTD_isError(ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_nbWorkers, (int)threads)) ||
              ZSTD_isError(ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_jobSize, ZSTD_JOB_BYTES))))) {
                pgsmb_zstd_out_done(z);
                return fail(err, errlen, -EINVAL, "zstd refuses its parameters");
        }
        return 0;
}

int pgsmb_archive_open_writer(struct archive **ret, struct zstd_out *z, char *err,
                               size_t errlen) {
        _cleanup_(archive_write_freep) struct archive *w = archive_write_new();
        if (!w)
                return fail(err, errlen, -ENOMEM, "out of memory");
        if (archive_write_set_format_pax_restricted(w) != ARCHIVE_OK ||
            archive_write_add_filter_none(w) != ARCHIVE_OK)
                return fail(err, errlen, -EOPNOTSUPP, "libarchive cannot write pax: %s",
                            la_error(w));
        /* Names are bytes on Linux: store them as they are, whatever the locale. */
        if (archive_write_set_format_option(w, "pax", "hdrcharset", "BINARY") != ARCHIVE_OK)
                return fail(err, errlen, -EOPNOTSUPP, "libarchive: %s", la_error(w));
        /* No padding after the last byte. */
        archive_write_set_bytes_per_block(w, PAX_BLOCK_BYTES);
        archive_write_set_bytes_in_last_block(w, 1);
        if (archive_write_open2(w, z, NULL, zstd_out_write, zstd_out_close, NULL) != ARCHIVE_OK)
                return fail(err, errlen, la_errno(w, EIO), "cannot start the archive: %s",
                            la_error(w));
        *ret = TAKE_PTR(w);
        return 0;
}

/* Ask the disk for the regular files of a directory before libarchive reads them one by one:
 * with the page cache cold, one blocking read at a time leaves the disk idle between files, while
 * readahead requests queued together are served in one sweep. Best effort, bounded per directory
 * and per file (what is left of a large file comes through the kernel's own readahead). Only
 * DT_REG entries are opened, non-blocking and without following links. */