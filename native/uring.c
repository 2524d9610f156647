/* See uring.h. The ring layout and the memory ordering follow io_uring(7) ("Submission queue polling" aside)
 * and liburing's src/queue.c: the kernel reads sq_tail with acquire semantics and we publish it with a
 * release store; cq_tail is read with acquire and cq_head published with release. */
#include "uring.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#if PODSOCK_HAVE_URING

static int sys_setup(unsigned entries, struct io_uring_params *p) {
  return (int)syscall(SYS_io_uring_setup, entries, p);
}

static int sys_enter(int fd, unsigned to_submit, unsigned min_complete, unsigned flags) {
  return (int)syscall(SYS_io_uring_enter, fd, to_submit, min_complete, flags, NULL, 0);
}

static int sys_register(int fd, unsigned op, void *arg, unsigned nr) {
  return (int)syscall(SYS_io_uring_register, fd, op, arg, nr);
}

int uring_open(uring_t *u, unsigned sq_entries, unsigned cq_entries, unsigned nbufs, unsigned buf_size, int eventfd,
               const char **what) {
  struct io_uring_params p;
  int err;
  memset(u, 0, sizeof *u);
  u->fd = -1;
  memset(&p, 0, sizeof p);
  p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_CQSIZE;
  p.cq_entries = cq_entries;
  *what = "io_uring_setup";
  int fd = sys_setup(sq_entries, &p);
  if (fd < 0) return -errno;
  u->fd = fd;
  *what = "io_uring_setup(features)";
  if (!(p.features & IORING_FEAT_SINGLE_MMAP) || !(p.features & IORING_FEAT_NODROP)) {
    err = -EINVAL;
    goto fail;
  }
  size_t sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
  size_t cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
  u->ring_map_len = sq_len > cq_len ? sq_len : cq_len;
  *what = "mmap(io_uring rings)";
  u->ring_map = mmap(NULL, u->ring_map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQ_RING);
  if (u->ring_map == MAP_FAILED) {
    u->ring_map = NULL;
    err = -errno;
    goto fail;
  }
  u->sqes_map_len = p.sq_entries * sizeof(struct io_uring_sqe);
  *what = "mmap(io_uring sqes)";
  u->sqes_map = mmap(NULL, u->sqes_map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
  if (u->sqes_map == MAP_FAILED) {
    u->sqes_map = NULL;
    err = -errno;
    goto fail;
  }
  char *ring = u->ring_map;
  u->sq_head = (unsigned *)(ring + p.sq_off.head);
  u->sq_tail = (unsigned *)(ring + p.sq_off.tail);
  u->sq_mask = (unsigned *)(ring + p.sq_off.ring_mask);
  u->sq_array = (unsigned *)(ring + p.sq_off.array);
  u->sq_flags = (unsigned *)(ring + p.sq_off.flags);
  u->sq_entries = p.sq_entries;
  u->sq_local_tail = *u->sq_tail;
  u->sqes = u->sqes_map;
  u->cq_head = (unsigned *)(ring + p.cq_off.head);
  u->cq_tail = (unsigned *)(ring + p.cq_off.tail);
  u->cq_mask = (unsigned *)(ring + p.cq_off.ring_mask);
  u->cqes = (struct io_uring_cqe *)(ring + p.cq_off.cqes);

  /* Provided buffers: the ring of descriptors must be page aligned (mmap gives that); the buffers
   * themselves are touched only when the kernel receives into them. */
  u->nbufs = nbufs;
  u->buf_size = buf_size;
  u->br_len = nbufs * sizeof(struct io_uring_buf);
  *what = "mmap(io_uring buffer ring)";
  u->br = mmap(NULL, u->br_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (u->br == MAP_FAILED) {
    u->br = NULL;
    err = -errno;
    goto fail;
  }
  u->bufs_len = (size_t)nbufs * buf_size;
  *what = "mmap(io_uring buffers)";
  u->bufs = mmap(NULL, u->bufs_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (u->bufs == MAP_FAILED) {
    u->bufs = NULL;
    err = -errno;
    goto fail;
  }
  struct io_uring_buf_reg reg;
  memset(&reg, 0, sizeof reg);
  reg.ring_addr = (unsigned long)u->br;
  reg.ring_entries = nbufs;
  reg.bgid = 0;
  *what = "io_uring_register(PBUF_RING)";
  if (sys_register(fd, IORING_REGISTER_PBUF_RING, &reg, 1) < 0) {
    err = -errno;
    goto fail;
  }
  for (unsigned bid = 0; bid < nbufs; bid++) uring_buf_return(u, bid);
  *what = "io_uring_register(EVENTFD)";
  if (sys_register(fd, IORING_REGISTER_EVENTFD, &eventfd, 1) < 0) {
    err = -errno;
    goto fail;
  }
  *what = NULL;
  return 0;

fail:
  uring_close(u);
  return err;
}

void uring_close(uring_t *u) {
  /* Closing the ring cancels whatever is still in flight (io_uring_release). */
  if (u->fd >= 0) close(u->fd);
  if (u->ring_map != NULL) munmap(u->ring_map, u->ring_map_len);
  if (u->sqes_map != NULL) munmap(u->sqes_map, u->sqes_map_len);
  if (u->br != NULL) munmap(u->br, u->br_len);
  if (u->bufs != NULL) munmap(u->bufs, u->bufs_len);
  memset(u, 0, sizeof *u);
  u->fd = -1;
}

struct io_uring_sqe *uring_sqe(uring_t *u) {
#ifdef URING_FAULT_SQE_EVERY
  /* Fault injection for the stress build (test/unit/sd/relay-asan.test.ts): every Nth slot is refused
   * as if the queue were full and could not be submitted, which the kernel does only under memory
   * pressure (EAGAIN) or a completion backlog (EBUSY). */
  static unsigned calls;
  if (++calls % URING_FAULT_SQE_EVERY == 0) return NULL;
#endif
  unsigned head = __atomic_load_n(u->sq_head, __ATOMIC_ACQUIRE);
  if (u->sq_local_tail - head >= u->sq_entries) {
    if (uring_submit(u, false) < 0) return NULL;
    head = __atomic_load_n(u->sq_head, __ATOMIC_ACQUIRE);
    if (u->sq_local_tail - head >= u->sq_entries) return NULL;
  }
  unsigned idx = u->sq_local_tail & *u->sq_mask;
  struct io_uring_sqe *sqe = &u->sqes[idx];
  memset(sqe, 0, sizeof *sqe);
  u->sq_array[idx] = idx;
  u->sq_local_tail++;
  __atomic_store_n(u->sq_tail, u->sq_local_tail, __ATOMIC_RELEASE);
  u->to_submit++;
  return sqe;
}

int uring_submit(uring_t *u, bool getevents) {
  if (u->to_submit == 0 && !getevents) return 0;
  for (;;) {
    int n = sys_enter(u->fd, u->to_submit, 0, getevents ? IORING_ENTER_GETEVENTS : 0);
    if (n >= 0) {
      u->to_submit -= (unsigned)n > u->to_submit ? u->to_submit : (unsigned)n;
      return 0;
    }
    if (errno == EINTR) continue;
    /* EAGAIN/EBUSY: the kernel is short of memory for requests or the completion backlog is full; what
     * was not consumed stays queued and goes with the next call. */
    return -errno;
  }
}

bool uring_pending(uring_t *u) {
  return *u->cq_head != __atomic_load_n(u->cq_tail, __ATOMIC_ACQUIRE);
}

bool uring_work_pending(uring_t *u) {
  return (__atomic_load_n(u->sq_flags, __ATOMIC_ACQUIRE) & IORING_SQ_TASKRUN) != 0;
}

bool uring_next(uring_t *u, struct io_uring_cqe *out) {
  unsigned head = *u->cq_head;
  if (head == __atomic_load_n(u->cq_tail, __ATOMIC_ACQUIRE)) return false;
  *out = u->cqes[head & *u->cq_mask];
  __atomic_store_n(u->cq_head, head + 1, __ATOMIC_RELEASE);
  return true;
}

char *uring_buf(uring_t *u, unsigned bid) {
  return u->bufs + (size_t)bid * u->buf_size;
}

void uring_buf_return(uring_t *u, unsigned bid) {
  struct io_uring_buf *b = &u->br->bufs[u->br_tail & (u->nbufs - 1)];
  b->addr = (unsigned long)uring_buf(u, bid);
  b->len = u->buf_size;
  b->bid = (unsigned short)bid;
  u->br_tail++;
  __atomic_store_n(&u->br->tail, u->br_tail, __ATOMIC_RELEASE);
}

long uring_bufs_release(uring_t *u) {
  if (u->bufs == NULL) return 0;
  if (madvise(u->bufs, u->bufs_len, MADV_DONTNEED) != 0) return -errno;
  return (long)u->bufs_len;
}

#else /* the kernel headers predate Linux 6.1's io_uring: the relay polls */

int uring_open(uring_t *u, unsigned sq_entries, unsigned cq_entries, unsigned nbufs, unsigned buf_size, int eventfd,
               const char **what) {
  memset(u, 0, sizeof *u);
  u->fd = -1;
  *what = "io_uring (built without Linux 6.1 headers)";
  return -ENOSYS;
}
void uring_close(uring_t *u) {}
struct io_uring_sqe *uring_sqe(uring_t *u) { return NULL; }
int uring_submit(uring_t *u, bool getevents) { return -ENOSYS; }
bool uring_next(uring_t *u, struct io_uring_cqe *out) { return false; }
bool uring_pending(uring_t *u) { return false; }
bool uring_work_pending(uring_t *u) { return false; }
char *uring_buf(uring_t *u, unsigned bid) { return NULL; }
void uring_buf_return(uring_t *u, unsigned bid) {}
long uring_bufs_release(uring_t *u) { return 0; }

#endif
