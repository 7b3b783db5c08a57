#include "netlab/tftp/files.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include <atomic>

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <openssl/evp.h>

namespace netlab::tftp {
namespace fs = std::filesystem;
namespace {

constexpr std::size_t read_block = 4 << 20;   // bytes per pread (covers several windows)
constexpr std::size_t map_chunk = 8 << 20;    // bytes of a file mapped at a time (two windows of 64 blocks)
constexpr std::size_t write_block = 1 << 20;  // bytes per write
constexpr std::size_t netascii_chunk = 1 << 20;  // file bytes converted per step (one restart point each)

std::atomic<bool> force_fallback_all{false};

std::error_code last_error() { return {errno, std::generic_category()}; }

bool under(const fs::path& p, const fs::path& root) {
  auto r = root.begin(), i = p.begin();
  for (; r != root.end(); ++r, ++i) {
    if (r->empty()) continue;  // trailing separator of the root
    if (i == p.end() || *i != *r) return false;
  }
  return true;
}

std::string hex(const unsigned char* p, unsigned n) {
  static const char* d = "0123456789abcdef";
  std::string s;
  s.reserve(n * 2);
  for (unsigned i = 0; i < n; ++i) {
    s += d[p[i] >> 4];
    s += d[p[i] & 15];
  }
  return s;
}

// The request's name as a path relative to the root (no "..", an absolute name must lie under the
// root), or why it is refused.
bool relative_name(const fs::path& root, const std::string& name, std::string& rel, opened_file& why) {
  if (name.empty()) {
    why.refusal = error_code::file_not_found;
    why.reason = "empty file name";
    return false;
  }
  fs::path asked(name);
  for (const auto& part : asked)
    if (part == "..") {
      why.refusal = error_code::access_violation;
      why.reason = "'..' in path";
      return false;
    }
  if (asked.is_absolute()) {
    const fs::path full = asked.lexically_normal();
    if (!under(full, root)) {
      why.refusal = error_code::access_violation;
      why.reason = "path outside the served root";
      return false;
    }
    asked = full.lexically_relative(root);
  }
  rel = asked.lexically_normal().string();
  if (rel.empty()) rel = ".";
  return true;
}

opened_file refused(error_code code, std::string why) {
  opened_file r;
  r.refusal = code;
  r.reason = std::move(why);
  return r;
}

// A failed open beneath the root as the TFTP error to answer.
opened_file refused_open(int err, bool directory) {
  switch (err) {
    case ENOENT:
      return refused(error_code::file_not_found, directory ? "no such directory" : "no such file");
    case EXDEV:
      return refused(error_code::access_violation, "the path leads outside the served root (or through an absolute symlink)");
    case ELOOP:
      return refused(error_code::access_violation, "symlink refused (it leads outside the root, or loops)");
    case ENOTDIR:
      return refused(error_code::access_violation, "not a directory (or a symlink to one that is not followed)");
    case EACCES:
    case EPERM:
      return refused(error_code::access_violation, directory ? "directory not accessible" : "not readable");
    default:
      return refused(error_code::access_violation, "cannot open: " + std::error_code(err, std::generic_category()).message());
  }
}

}  // namespace

unique_fd& unique_fd::operator=(unique_fd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.release();
  }
  return *this;
}

unique_fd::~unique_fd() {
  if (fd_ >= 0) ::close(fd_);
}

namespace detail {

void force_openat_fallback(bool on) noexcept { force_fallback_all = on; }

namespace {
// Whether openat2 works here: 0 not probed yet, 1 yes, 2 no (Linux < 5.6: ENOSYS; an old container
// seccomp profile: EPERM). Probed once, on the first lookup, by opening the directory itself.
std::atomic<int> openat2_state{0};

long sys_openat2(int dirfd, const char* path, int flags) {
  open_how how{};
  how.flags = static_cast<std::uint64_t>(flags | O_CLOEXEC);
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  return ::syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

bool have_openat2(int dirfd) {
  int st = openat2_state.load();
  if (st == 0) {
    const long fd = sys_openat2(dirfd, ".", O_PATH | O_DIRECTORY);
    if (fd >= 0) ::close(static_cast<int>(fd));
    st = fd >= 0 || (errno != ENOSYS && errno != EPERM) ? 1 : 2;
    openat2_state = st;
  }
  return st == 1;
}
}  // namespace

int open_beneath(int dirfd, const std::string& rel, int flags, bool force_fallback) {
  if (!force_fallback && !force_fallback_all && have_openat2(dirfd)) {
    // EAGAIN: a rename somewhere raced a ".." inside a symlink; retry a few times, then give up (the
    // request is refused) rather than spin while someone renames in a loop.
    for (int tries = 0;; ++tries) {
      const long fd = sys_openat2(dirfd, rel.c_str(), flags);
      if (fd >= 0) return static_cast<int>(fd);
      if (errno == EINTR || (errno == EAGAIN && tries < 16)) continue;
      if (errno != ENOSYS) return -1;
      break;
    }
  }
  // No openat2 (Linux < 5.6, or a seccomp filter refusing it): one component at a time, never following
  // a symlink. A symlink, even one that stays inside the root, is refused (ELOOP, or ENOTDIR for a
  // directory component).
  std::vector<std::string> parts;
  for (const auto& p : fs::path(rel)) {
    const auto s = p.string();
    if (s.empty() || s == "." || s == "/") continue;
    if (s == "..") {
      errno = EXDEV;
      return -1;
    }
    parts.push_back(s);
  }
  if (parts.empty()) return ::openat(dirfd, ".", flags | O_CLOEXEC);
  int cur = dirfd;
  unique_fd hold;
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    const int next = ::openat(cur, parts[i].c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0) return -1;
    hold = unique_fd(next);
    cur = next;
  }
  return ::openat(cur, parts.back().c_str(), flags | O_NOFOLLOW | O_CLOEXEC);
}

}  // namespace detail

std::unique_ptr<root_dir> root_dir::open(const fs::path& path, std::error_code& ec) {
  std::unique_ptr<root_dir> r(new root_dir);
  r->path_ = fs::canonical(path, ec);
  if (ec) return nullptr;
  const int fd = ::open(r->path_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    ec = last_error();
    return nullptr;
  }
  r->fd_ = unique_fd(fd);
  return r;
}

opened_file open_for_read(const root_dir& root, const std::string& name) {
  opened_file r;
  std::string rel;
  if (!relative_name(root.path(), name, rel, r)) return r;
  // O_NONBLOCK: opening a FIFO with no writer would block the server forever; the fd is checked next.
  const int fd = detail::open_beneath(root.fd(), rel, O_RDONLY | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) return refused_open(errno, false);
  unique_fd f(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0) return refused(error_code::access_violation, "cannot stat: " + last_error().message());
  if (!S_ISREG(st.st_mode)) return refused(error_code::access_violation, "not a regular file");
  const int fl = ::fcntl(fd, F_GETFL);
  if (fl >= 0) ::fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
  r.fd = std::move(f);
  return r;
}

opened_file open_for_write(const root_dir& root, const std::string& name, bool overwrite) {
  opened_file r;
  std::string rel;
  if (!relative_name(root.path(), name, rel, r)) return r;
  const fs::path p(rel);
  const std::string leaf = p.filename().string();
  if (leaf.empty() || leaf == "." || leaf == "/") return refused(error_code::access_violation, "not a file name");
  const std::string parent = p.parent_path().string();
  const int dir = detail::open_beneath(root.fd(), parent.empty() ? "." : parent, O_PATH | O_DIRECTORY);
  if (dir < 0) return refused_open(errno, true);
  unique_fd d(dir);
  struct stat st {};
  if (::fstatat(dir, leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {  // the name itself, never followed
    if (!overwrite) return refused(error_code::file_exists, "file exists (the server allows no overwrite)");
    if (!S_ISREG(st.st_mode))
      return refused(error_code::access_violation, "not a regular file (an upload never replaces a symlink, directory or device)");
  } else if (errno != ENOENT) {
    return refused_open(errno, false);
  }
  r.fd = std::move(d);
  r.leaf = leaf;
  return r;
}

// ---- source -------------------------------------------------------------------------------------

std::unique_ptr<source> source::open(const fs::path& path, bool netascii, std::error_code& ec) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    ec = last_error();
    return nullptr;
  }
  return open(unique_fd(fd), netascii, ec);
}

std::unique_ptr<source> source::open(unique_fd file, bool netascii, std::error_code& ec) {
  struct stat st {};
  if (::fstat(file.get(), &st) != 0) {
    ec = last_error();
    return nullptr;
  }
  if (!S_ISREG(st.st_mode)) {
    ec = std::make_error_code(std::errc::invalid_argument);
    return nullptr;
  }
  const int fd = file.release();
  std::unique_ptr<source> s(new source);
  s->size_ = static_cast<std::uint64_t>(st.st_size);
  if (!netascii) {
    s->fd_ = fd;
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    // Payloads go to the socket straight from the page cache: sendmmsg copies from a mapping of the
    // file, so each byte is copied once on this side instead of twice (pread, then send). Only the
    // kernel reads the mapping: if the file shrinks meanwhile, the send fails with EFAULT (no SIGBUS).
    // Where the file cannot be mapped, pread fills a buffer instead.
    std::error_code map_ec;
    s->mapped_ = s->size_ > 0 && s->map(0, std::min<std::uint64_t>(s->size_, map_chunk), map_ec);
    return s;
  }
  // netascii grows the file by one byte per CR and LF, so its size on the wire is known only once it
  // has all been converted: ensure() converts what each window needs, a chunk at a time, and notes
  // where each chunk starts so a retransmission can convert again from there.
  s->fd_ = fd;
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  s->netascii_ = true;
  s->file_size_ = s->size_;
  s->checkpoints_.push_back({0, 0});
  s->size_known_ = s->file_size_ == 0;
  if (!s->size_known_) s->size_ = UINT64_MAX;
  return s;
}

bool source::convert(std::uint64_t lo, std::uint64_t hi, std::error_code& ec) {
  // Restart from the last chunk start at or before lo; keep the buffer's bytes from there if it holds them.
  auto it = std::upper_bound(checkpoints_.begin(), checkpoints_.end(), lo,
                             [](std::uint64_t v, const checkpoint& c) { return v < c.wire; });
  const checkpoint from = *(it - 1);
  std::uint64_t wire, file;
  if (len_ > 0 && from.wire >= base_ && from.wire <= base_ + len_ && conv_end_.wire == base_ + len_) {
    buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(from.wire - base_));
    base_ = from.wire;
    wire = conv_end_.wire;
    file = conv_end_.file;
  } else {
    buf_.clear();
    base_ = wire = from.wire;
    file = from.file;
  }
  len_ = 0;
  std::vector<std::uint8_t> raw(netascii_chunk);
  while (wire < hi && file < file_size_) {
    if (file > checkpoints_.back().file) checkpoints_.push_back({wire, file});
    const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(netascii_chunk, file_size_ - file));
    std::size_t got = 0;
    while (got < want) {
      const auto n = ::pread(fd_, raw.data() + got, want - got, static_cast<off_t>(file + got));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        ec = last_error();
        return false;
      }
      if (n == 0) break;  // the file shrank under us: it ends here
      got += static_cast<std::size_t>(n);
    }
    if (got < want) file_size_ = file + got;
    // Runs of ordinary bytes are copied whole; LF becomes CR LF, CR becomes CR NUL (at most 2x).
    const std::size_t before = buf_.size();
    buf_.resize(before + 2 * got);
    std::uint8_t* o = buf_.data() + before;
    const std::uint8_t* p = raw.data();
    const std::uint8_t* const end = p + got;
    while (p < end) {
      const std::uint8_t* q = p;
      while (q < end && *q != '\n' && *q != '\r') ++q;
      std::memcpy(o, p, static_cast<std::size_t>(q - p));
      o += q - p;
      if (q == end) break;
      *o++ = '\r';
      *o++ = *q == '\n' ? '\n' : 0;
      p = q + 1;
    }
    buf_.resize(static_cast<std::size_t>(o - buf_.data()));
    wire += buf_.size() - before;
    file += got;
  }
  conv_end_ = {wire, file};
  if (file >= file_size_) {
    size_ = wire;
    size_known_ = true;
  }
  view_ = buf_.data();
  len_ = buf_.size();
  if (lo < base_ || std::min(hi, size_) > base_ + len_) {  // cannot happen: the loop ran to hi or to the end
    ec = std::make_error_code(std::errc::io_error);
    return false;
  }
  return true;
}

std::unique_ptr<source> source::from_bytes(std::vector<std::uint8_t> bytes) {
  std::unique_ptr<source> s(new source);
  s->size_ = bytes.size();
  s->len_ = bytes.size();
  s->buf_ = std::move(bytes);
  s->memory_ = true;
  s->view_ = s->buf_.data();
  return s;
}

source::~source() {
  if (mapped_ && view_) ::munmap(const_cast<std::uint8_t*>(view_), static_cast<std::size_t>(len_));
  if (fd_ >= 0) ::close(fd_);
}

bool source::ensure(std::uint64_t lo, std::uint64_t hi, std::error_code& ec) {
  hi = std::min(hi, size_);
  if (memory_ || (lo >= base_ && hi <= base_ + len_)) return true;
  if (mapped_) return map(lo, hi, ec);
  if (netascii_) return convert(lo, hi, ec);
  const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(std::max<std::uint64_t>(read_block, hi - lo), size_ - lo));
  if (buf_.size() < want) buf_.resize(want);
  std::size_t got = 0;
  while (got < want) {
    const auto n = ::pread(fd_, buf_.data() + got, want - got, static_cast<off_t>(lo + got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ec = last_error();
      len_ = 0;
      return false;
    }
    if (n == 0) {  // the file shrank under us
      ec = std::make_error_code(std::errc::io_error);
      len_ = 0;
      return false;
    }
    got += static_cast<std::size_t>(n);
  }
  base_ = lo;
  len_ = got;
  view_ = buf_.data();
  return true;
}

bool source::map(std::uint64_t lo, std::uint64_t hi, std::error_code& ec) {
  // A window of the file from the page below lo: map_chunk bytes, or more for a larger window. Only
  // the window is mapped so the pages of a large file do not all count in this process's RSS.
  static const std::uint64_t page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  const std::uint64_t start = lo / page * page;
  const auto len = static_cast<std::size_t>(std::min(std::max<std::uint64_t>(map_chunk, hi - start), size_ - start));
  if (view_) ::munmap(const_cast<std::uint8_t*>(view_), static_cast<std::size_t>(len_));
  view_ = nullptr;
  len_ = 0;
  void* m = ::mmap(nullptr, len, PROT_READ, MAP_SHARED, fd_, static_cast<off_t>(start));
  if (m == MAP_FAILED) {
    ec = last_error();
    return false;
  }
  ::madvise(m, len, MADV_WILLNEED);  // start reading ahead now, not at the first send's page fault
  view_ = static_cast<const std::uint8_t*>(m);
  base_ = start;
  len_ = len;
  return true;
}

// ---- sink ---------------------------------------------------------------------------------------

std::unique_ptr<sink> sink::create(const options& o, std::error_code& ec) {
  std::unique_ptr<sink> s(new sink);
  s->o_ = o;
  s->cap_ = 2 * write_block;
  s->buf_.reset(new std::uint8_t[s->cap_]);
  if (o.target == "-") {
    s->stream_ = true;
    s->fd_ = STDOUT_FILENO;
  } else if (o.stream) {
    // A device or FIFO (curl -o /dev/null): written into as it is. No O_CREAT: if the name was
    // replaced by nothing meanwhile, no regular file appears in its place. A FIFO's open waits for
    // its reader, as a shell's redirection does.
    s->stream_ = true;
    s->fd_ = ::open(o.target.c_str(), O_WRONLY | O_NOCTTY | O_CLOEXEC);
    if (s->fd_ < 0) {
      ec = last_error();
      s->done_ = true;
      return nullptr;
    }
  } else if (o.dir_fd >= 0) {
    // Beneath a directory descriptor: the name is created there, exclusively and without following a
    // symlink (O_EXCL fails on any existing name, a dangling symlink included).
    s->dir_ = ::fcntl(o.dir_fd, F_DUPFD_CLOEXEC, 0);
    if (s->dir_ < 0) {
      ec = last_error();
      return nullptr;
    }
    const fs::path& p = o.temporary.empty() ? o.target : o.temporary;
    int flags = O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC;
    flags |= o.temporary.empty() && o.overwrite ? O_TRUNC : O_EXCL;
    s->fd_ = ::openat(s->dir_, p.c_str(), flags, 0644);
    if (s->fd_ < 0) {
      ec = last_error();
      s->done_ = true;  // nothing of ours to remove
      return nullptr;
    }
  } else {
    const fs::path& p = o.temporary.empty() ? o.target : o.temporary;
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC;
    flags |= o.temporary.empty() ? O_TRUNC : O_EXCL;
    s->fd_ = ::open(p.c_str(), flags, 0644);
    if (s->fd_ < 0) {
      ec = last_error();
      return nullptr;
    }
  }
  if (o.sha256) {
    auto* md = EVP_MD_CTX_new();
    EVP_DigestInit_ex(md, EVP_sha256(), nullptr);
    s->md_ = md;
  }
  return s;
}

sink::~sink() {
  abandon();
  if (dir_ >= 0) ::close(dir_);
  if (md_) EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(md_));
}

bool sink::put(const std::uint8_t* p, std::size_t n, std::error_code& ec) {
  if (md_) EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(md_), p, n);
  written_ += n;
  if (p == buf_.get() + used_ && used_ + n <= cap_) {  // received in place (receive_area): nothing to copy
    used_ += n;
    return true;
  }
  if (used_ + n > cap_ && !flush(ec)) return false;
  if (n > cap_) return write_all(p, n, ec);  // larger than the buffer: straight to the file
  std::memmove(buf_.get() + used_, p, n);    // p may lie further on in the buffer (receive_area)
  used_ += n;
  return true;
}

std::uint8_t* sink::receive_area(std::size_t n) {
  if (used_ + n > cap_) {
    const std::size_t cap = std::max(used_ + n, write_block + n);
    std::unique_ptr<std::uint8_t[]> bigger(new std::uint8_t[cap]);
    if (used_) std::memcpy(bigger.get(), buf_.get(), used_);
    buf_ = std::move(bigger);
    cap_ = cap;
  }
  return buf_.get() + used_;
}

bool sink::drain(std::error_code& ec) { return used_ < write_block || flush(ec); }

bool sink::write(const std::uint8_t* p, std::size_t n, std::error_code& ec) {
  if (!o_.netascii) return put(p, n, ec);
  // netascii decoding: CR LF → LF, CR NUL → CR; a CR at the end of a block waits for the next one.
  std::vector<std::uint8_t> out;
  out.reserve(n + 1);
  for (std::size_t i = 0; i < n; ++i) {
    const auto c = p[i];
    if (cr_pending_) {
      cr_pending_ = false;
      if (c == '\n') { out.push_back('\n'); continue; }
      out.push_back('\r');
      if (c == 0) continue;
    }
    if (c == '\r') cr_pending_ = true;
    else out.push_back(c);
  }
  return put(out.data(), out.size(), ec);
}

bool sink::write_all(const std::uint8_t* p, std::size_t n, std::error_code& ec) {
  while (n > 0) {
    const auto w = ::write(fd_, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      ec = last_error();
      return false;
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

bool sink::flush(std::error_code& ec) {
  if (!write_all(buf_.get(), used_, ec)) return false;
  used_ = 0;
  return true;
}

bool sink::commit(std::error_code& ec) {
  if (cr_pending_) {  // a lone CR at the very end
    cr_pending_ = false;
    const std::uint8_t cr = '\r';
    if (!put(&cr, 1, ec)) return false;
  }
  if (!flush(ec)) return false;
  if (md_) {
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(md_), d, &n);
    digest_ = hex(d, n);
  }
  if (stream_) {
    done_ = true;
    if (fd_ != STDOUT_FILENO && fd_ >= 0 && ::close(fd_) != 0) {
      fd_ = -1;
      ec = last_error();
      return false;
    }
    fd_ = -1;
    return true;
  }
  if (::close(fd_) != 0) {
    fd_ = -1;
    ec = last_error();
    return false;
  }
  fd_ = -1;
  if (dir_ >= 0 && !o_.temporary.empty()) {
    // Renamed within the directory descriptor: without --allow-overwrite atomically refused if the name
    // exists by now (whatever it is: a file, a dangling symlink); with it, a symlink is replaced, never
    // followed.
    const char* from = o_.temporary.c_str();
    const char* to = o_.target.c_str();
    int r = ::renameat2(dir_, from, dir_, to, o_.overwrite ? 0 : RENAME_NOREPLACE);
    if (r != 0 && !o_.overwrite && (errno == EINVAL || errno == ENOSYS)) {  // a file system without NOREPLACE
      r = ::linkat(dir_, from, dir_, to, 0);                                // link fails if the name exists
      if (r == 0) ::unlinkat(dir_, from, 0);
    }
    if (r != 0) {
      ec = last_error();
      return false;
    }
  } else if (!o_.temporary.empty()) {
    if (!o_.overwrite && ::access(o_.target.c_str(), F_OK) == 0) {
      ec = std::make_error_code(std::errc::file_exists);
      return false;
    }
    std::error_code rec;
    fs::rename(o_.temporary, o_.target, rec);
    if (rec) {
      ec = rec;
      return false;
    }
  }
  done_ = true;
  return true;
}

void sink::abandon() noexcept {
  if (stream_ && fd_ != STDOUT_FILENO && fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  if (stream_ || done_) return;
  if (o_.keep_partial && fd_ >= 0 && used_ > 0) {
    // What arrived may still sit in the buffer (up to 2 MiB): a kept partial file holds all of it, not
    // just what happened to be written so far. A write error here leaves what the disk took.
    std::error_code ec;
    if (write_all(buf_.get(), used_, ec)) used_ = 0;
  }
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  done_ = true;
  if (!o_.keep_partial) {
    std::error_code ec;
    if (dir_ >= 0) ::unlinkat(dir_, (o_.temporary.empty() ? o_.target : o_.temporary).c_str(), 0);
    else fs::remove(o_.temporary.empty() ? o_.target : o_.temporary, ec);
  }
}

std::string sha256_hex(const std::uint8_t* p, std::size_t n) {
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  EVP_Digest(p, n, d, &len, EVP_sha256(), nullptr);
  return hex(d, len);
}

std::string sha256_fd(int fd, std::uint64_t& size, std::error_code& ec) {
  auto* md = EVP_MD_CTX_new();
  EVP_DigestInit_ex(md, EVP_sha256(), nullptr);
  std::vector<std::uint8_t> buf(read_block);
  size = 0;
  for (;;) {
    const auto n = ::pread(fd, buf.data(), buf.size(), static_cast<off_t>(size));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) ec = last_error();
    if (n <= 0) break;
    EVP_DigestUpdate(md, buf.data(), static_cast<std::size_t>(n));
    size += static_cast<std::uint64_t>(n);
  }
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  EVP_DigestFinal_ex(md, d, &len);
  EVP_MD_CTX_free(md);
  return ec ? std::string() : hex(d, len);
}

std::vector<std::uint8_t> netascii_encode(const std::uint8_t* p, std::size_t n) {
  std::vector<std::uint8_t> out;
  out.reserve(n + n / 16);
  for (std::size_t i = 0; i < n; ++i) {
    if (p[i] == '\n') {
      out.push_back('\r');
      out.push_back('\n');
    } else if (p[i] == '\r') {
      out.push_back('\r');
      out.push_back(0);
    } else {
      out.push_back(p[i]);
    }
  }
  return out;
}

}  // namespace netlab::tftp
