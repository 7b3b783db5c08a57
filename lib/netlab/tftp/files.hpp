// Files behind a transfer: a safe path under the server's root, a block source with a large read
// cache (one pread per window), and a sink that writes in large blocks to a temporary name and
// renames on success. netascii is converted here, so the state machines only see octets.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "netlab/tftp/packet.hpp"

namespace netlab::tftp {

/// An owned file descriptor (closed by the destructor).
class unique_fd {
public:
  unique_fd() = default;
  explicit unique_fd(int fd) noexcept : fd_(fd) {}
  unique_fd(unique_fd&& o) noexcept : fd_(o.release()) {}
  unique_fd& operator=(unique_fd&& o) noexcept;
  ~unique_fd();
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
  int get() const noexcept { return fd_; }
  /// Gives the descriptor away.
  int release() noexcept {
    const int f = fd_;
    fd_ = -1;
    return f;
  }
  explicit operator bool() const noexcept { return fd_ >= 0; }

private:
  int fd_ = -1;
};

/// The served root, opened once as a directory: every request is resolved beneath this descriptor
/// (openat2 RESOLVE_BENEATH), never re-opened by name, so swapping a path for a symlink between a check
/// and the open cannot lead outside it.
class root_dir {
public:
  /// Opens `path` (canonicalised; must be a directory).
  static std::unique_ptr<root_dir> open(const std::filesystem::path& path, std::error_code& ec);
  int fd() const noexcept { return fd_.get(); }
  const std::filesystem::path& path() const noexcept { return path_; }

private:
  root_dir() = default;
  unique_fd fd_;
  std::filesystem::path path_;
};

/// A request's file opened beneath the root, or the TFTP error that refuses it.
struct opened_file {
  unique_fd fd;          ///< RRQ: the file (regular). WRQ: the directory the file goes in.
  std::string leaf;      ///< WRQ: the file's name in that directory
  error_code refusal = error_code::not_defined;
  std::string reason;    ///< non-empty: refused with `refusal`
  bool ok() const noexcept { return reason.empty(); }
};

/// RRQ: opens `name` beneath `root` read-only and non-blocking (a FIFO must not hang the server), then
/// checks the opened descriptor: a regular file only. `..`, absolute paths outside the root, absolute
/// symlinks and symlinks leading out are access violations; a missing file is file_not_found.
opened_file open_for_read(const root_dir& root, const std::string& name);
/// WRQ: opens the directory `name` goes in beneath `root` and checks the name there (without following
/// it): it must not exist (not even as a dangling symlink) unless `overwrite`, and only a regular file
/// is ever replaced. The sink then creates its temporary in that directory and renames it there.
opened_file open_for_write(const root_dir& root, const std::string& name, bool overwrite);

namespace detail {
/// openat2(dirfd, rel, flags, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS), or, where openat2 is missing
/// (ENOSYS, or EPERM from a seccomp filter: probed once) or `force_fallback`, component by component
/// with O_NOFOLLOW: then every symlink is refused (ELOOP/ENOTDIR), even one that stays inside. Returns
/// the fd, or -1 with errno set.
int open_beneath(int dirfd, const std::string& rel, int flags, bool force_fallback = false);
/// Forces the per-component fallback in every open_beneath() call (tests of kernels without openat2).
void force_openat_fallback(bool on) noexcept;
}  // namespace detail

/// Bytes to send: a file mapped into memory (pread in large blocks where it cannot be mapped), a
/// netascii conversion made a window at a time, or a buffer.
class source {
public:
  /// Opens `path` for reading; netascii converts it to CR LF / CR NUL as it is read.
  static std::unique_ptr<source> open(const std::filesystem::path& path, bool netascii, std::error_code& ec);
  /// The same over an open regular file (taken over, closed by the source).
  static std::unique_ptr<source> open(unique_fd fd, bool netascii, std::error_code& ec);
  /// A source over bytes already in memory (tests, stdin).
  static std::unique_ptr<source> from_bytes(std::vector<std::uint8_t> bytes);
  ~source();
  source(const source&) = delete;
  source& operator=(const source&) = delete;
  /// Total bytes (valid once size_known()).
  std::uint64_t size() const noexcept { return size_; }
  /// False for netascii until the conversion reached the end of the file (its size on the wire is
  /// not known before: finding it would mean reading the whole file first).
  bool size_known() const noexcept { return size_known_; }
  /// Makes [lo, hi) readable through at() until the next ensure(); false on a read error.
  bool ensure(std::uint64_t lo, std::uint64_t hi, std::error_code& ec);
  /// Pointer to byte `offset` (inside the last ensure()'d range).
  /// For a mapped file the pointer is for the kernel only (send it, never read it here): the file may
  /// shrink under us, and a read past its end would raise SIGBUS where a send returns EFAULT.
  const std::uint8_t* at(std::uint64_t offset) const noexcept {
    return view_ + (offset - base_);
  }
  /// True if at() points into a mapping of the file.
  bool mapped() const noexcept { return mapped_; }

private:
  source() = default;
  int fd_ = -1;
  std::uint64_t size_ = 0;
  bool size_known_ = true;
  bool map(std::uint64_t lo, std::uint64_t hi, std::error_code& ec);
  bool convert(std::uint64_t lo, std::uint64_t hi, std::error_code& ec);
  // netascii: where conversion may restart (encoded offset -> file offset), one per converted chunk,
  // and the file's size when opened.
  struct checkpoint {
    std::uint64_t wire;
    std::uint64_t file;
  };
  std::vector<checkpoint> checkpoints_;
  checkpoint conv_end_{0, 0};  // where the converted buffer ends (wire, file)
  std::uint64_t file_size_ = 0;
  bool netascii_ = false;
  std::vector<std::uint8_t> buf_;
  const std::uint8_t* view_ = nullptr;  // byte base_ of the file: in buf_, or a mapping
  std::uint64_t base_ = 0;
  std::uint64_t len_ = 0;
  bool memory_ = false;
  bool mapped_ = false;
};

/// Where received bytes go: a file written via `NAME.part`-style temporary and renamed on commit(),
/// or a stream written in place (standard output, a character device such as /dev/null, a FIFO). Writes in blocks of 1 MiB or more; optional netascii decoding and SHA-256.
class sink {
public:
  struct options {
    std::filesystem::path target;    ///< final name ("-" = stdout)
    bool stream = false;             ///< target is a device or FIFO: opened as it is and written into
                                     ///< (never created, truncated, renamed or removed)
    std::filesystem::path temporary; ///< written first, renamed to target on commit (empty: target itself)
    bool netascii = false;
    bool sha256 = false;
    bool overwrite = false;          ///< commit() may replace an existing target
    bool keep_partial = false;       ///< abandon() keeps the temporary file
    int dir_fd = -1;                 ///< >= 0: target and temporary are names in this directory (duplicated):
                                     ///< created with openat O_EXCL|O_NOFOLLOW, renamed with renameat2
                                     ///< (RENAME_NOREPLACE unless overwrite), never looked up by path
  };
  /// Creates the temporary file (exclusively), opens the stream target, or takes stdout.
  static std::unique_ptr<sink> create(const options& o, std::error_code& ec);
  ~sink();
  sink(const sink&) = delete;
  sink& operator=(const sink&) = delete;
  /// Appends bytes (in order). They stay in the buffer (2 MiB, or what receive_area() made it) until
  /// drain() or commit(), or until the buffer is full. Bytes at receive_area()'s pointer are taken
  /// without a copy.
  bool write(const std::uint8_t* p, std::size_t n, std::error_code& ec);
  /// Room for `n` bytes at the end of the buffer, valid until the next receive_area() call: a receiver
  /// reads datagrams' payloads into it one after another, and write()s each in order from there.
  std::uint8_t* receive_area(std::size_t n);
  /// Writes the buffer to the file once it holds 1 MiB. A receiver calls it after its ACK is sent, so
  /// the file write overlaps the sender's next window instead of delaying it.
  bool drain(std::error_code& ec);
  /// Flushes, closes and renames the temporary to the target.
  bool commit(std::error_code& ec);
  /// Removes the temporary (unless keep_partial); called on any failure, and by the destructor.
  void abandon() noexcept;
  /// Bytes written (after netascii decoding).
  std::uint64_t bytes() const noexcept { return written_; }
  /// Hex SHA-256 of what was written (empty unless options.sha256), valid after commit().
  const std::string& sha256() const noexcept { return digest_; }
  /// The file being written.
  const std::filesystem::path& temporary() const noexcept { return o_.temporary; }

private:
  sink() = default;
  bool flush(std::error_code& ec);
  bool write_all(const std::uint8_t* p, std::size_t n, std::error_code& ec);
  bool put(const std::uint8_t* p, std::size_t n, std::error_code& ec);
  options o_;
  int fd_ = -1;
  int dir_ = -1;  // o_.dir_fd duplicated
  bool stream_ = false;  // stdout or options.stream: written in place, nothing to rename or remove
  bool done_ = false;
  bool cr_pending_ = false;
  std::unique_ptr<std::uint8_t[]> buf_;
  std::size_t used_ = 0;
  std::size_t cap_ = 0;
  std::uint64_t written_ = 0;
  void* md_ = nullptr;  // EVP_MD_CTX*
  std::string digest_;
};

/// Hex SHA-256 of an open file from its first byte (for raw mode's comparison), read with pread so the
/// descriptor's offset is untouched; `size` is the bytes read. Empty on error.
std::string sha256_fd(int fd, std::uint64_t& size, std::error_code& ec);
/// Hex SHA-256 of bytes.
std::string sha256_hex(const std::uint8_t* p, std::size_t n);

/// netascii encoding (RFC 764): LF → CR LF, CR → CR NUL.
std::vector<std::uint8_t> netascii_encode(const std::uint8_t* p, std::size_t n);

}  // namespace netlab::tftp
