/*
 * A minimal io_uring(7) ring for the relay: set-up, submission and completion queues, and one ring of
 * provided buffers (IORING_REGISTER_PBUF_RING) that receives pick from only when data arrives. Raw
 * system calls, no liburing (the package builds with nothing but the kernel's uapi headers).
 *
 * The ring is IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG
 * (Linux 6.1): completion work runs
 * only inside uring_submit(.., true) of the one thread that owns the ring, never interrupting it, and an
 * eventfd registered with the ring (IORING_REGISTER_EVENTFD) becomes readable when such work is queued,
 * which is how an event loop learns that it should call uring_submit(.., true).
 *
 * Nothing here knows about sockets or Node: see the relay's engine in relay-uring.c.
 */
#ifndef PODSOCK_URING_H
#define PODSOCK_URING_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/io_uring.h>

/* -DPODSOCK_HAVE_URING=0 builds the poll engine only (the test of the fallback build does). */
#ifndef PODSOCK_HAVE_URING
#if defined(IORING_SETUP_DEFER_TASKRUN) && defined(IORING_RECVSEND_POLL_FIRST)
#define PODSOCK_HAVE_URING 1
#else
#define PODSOCK_HAVE_URING 0
#endif
#endif

typedef struct {
  int fd; /* -1: not open */
  /* submission queue */
  unsigned *sq_head, *sq_tail, *sq_mask, *sq_array, *sq_flags;
  struct io_uring_sqe *sqes;
  unsigned sq_entries, sq_local_tail, to_submit;
  /* completion queue */
  unsigned *cq_head, *cq_tail, *cq_mask;
  struct io_uring_cqe *cqes;
  /* mappings */
  void *ring_map, *sqes_map;
  size_t ring_map_len, sqes_map_len;
  /* provided buffers: group 0 */
  struct io_uring_buf_ring *br;
  size_t br_len;
  char *bufs;
  size_t bufs_len;
  unsigned nbufs, buf_size;
  unsigned short br_tail;
} uring_t;

/*
 * Open a ring with `sq_entries` submission slots, `cq_entries` completion slots and `nbufs` (a power of
 * two) provided buffers of `buf_size` bytes each, and register `eventfd` with it. Returns 0, or a negative
 * errno (ENOSYS: no io_uring; EPERM: io_uring_disabled or a seccomp filter; EINVAL: a kernel before 6.1)
 * with everything released again. *what is set to the step that failed.
 */
int uring_open(uring_t *u, unsigned sq_entries, unsigned cq_entries, unsigned nbufs, unsigned buf_size, int eventfd,
               const char **what);
void uring_close(uring_t *u);

/* A zeroed submission slot, submitting what is queued first when the queue is full; NULL if even that
 * failed (the caller treats it as an error of the operation it wanted). */
struct io_uring_sqe *uring_sqe(uring_t *u);

/* Submit what is queued; with `getevents`, also run the completion work the kernel deferred for this
 * thread, so that its completions appear in the queue. Never waits. 0 or a negative errno. */
int uring_submit(uring_t *u, bool getevents);

/* Take the oldest completion, if any, into *out. */
bool uring_next(uring_t *u, struct io_uring_cqe *out);

/* Whether completions are waiting to be taken. */
bool uring_pending(uring_t *u);

/* Whether completion work is still deferred (IORING_SQ_TASKRUN, with IORING_SETUP_TASKRUN_FLAG): one
 * io_uring_enter runs only so much of it (IO_LOCAL_TW_DEFAULT_MAX items, Linux 6.13+) and keeps the rest
 * for the next call, without signalling the eventfd again. */
bool uring_work_pending(uring_t *u);

/* The memory of provided buffer `bid`, and giving it back to the kernel's pool. */
char *uring_buf(uring_t *u, unsigned bid);
void uring_buf_return(uring_t *u, unsigned bid);

/* Give the pages of every provided buffer back to the kernel (madvise(MADV_DONTNEED): the next use
 * finds zeroed pages). Only while no receive is in flight and no buffer is lent out, i.e. with no relay
 * on the ring: otherwise the kernel may be writing into one. The bytes given back, or a negative errno. */
long uring_bufs_release(uring_t *u);

#endif
