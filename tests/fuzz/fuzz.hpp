#pragma once
// Shared by the libFuzzer targets: an invariant check that aborts (libFuzzer saves the input as a
// crash), and a reader that turns the fuzz input into numbers, choices and byte strings.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

/// Aborts with the failed condition when an invariant does not hold.
#define FUZZ_CHECK(cond)                                                                    \
  do {                                                                                      \
    if (!(cond)) {                                                                          \
      std::fprintf(stderr, "fuzz invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                         \
    }                                                                                       \
  } while (0)

namespace netlab::fuzz {

/// Reads the fuzz input front to back; past its end every read returns zeros (never fails).
class reader {
public:
  reader(const std::uint8_t* p, std::size_t n) : p_(p), n_(n) {}
  bool empty() const { return n_ == 0; }
  std::size_t left() const { return n_; }
  std::uint8_t u8() {
    if (!n_) return 0;
    --n_;
    return *p_++;
  }
  // Each read is its own statement: the operands of | are evaluated in no fixed order.
  std::uint16_t u16() {
    const unsigned hi = u8();
    return static_cast<std::uint16_t>(hi << 8 | u8());
  }
  std::uint32_t u32() {
    const std::uint32_t hi = u16();
    return hi << 16 | u16();
  }
  std::uint64_t u64() {
    const std::uint64_t hi = u32();
    return hi << 32 | u32();
  }
  /// A value in [lo, hi].
  std::uint64_t range(std::uint64_t lo, std::uint64_t hi) {
    const std::uint64_t span = hi - lo;
    std::uint64_t v = span <= 0xff ? u8() : span <= 0xffff ? u16() : span <= 0xffffffffu ? u32() : u64();
    return span == UINT64_MAX ? v : lo + v % (span + 1);
  }
  /// Up to `max` bytes (the length comes from the input).
  std::string_view bytes(std::size_t max) {
    std::size_t len = static_cast<std::size_t>(range(0, max));
    if (len > n_) len = n_;
    std::string_view s(reinterpret_cast<const char*>(p_), len);
    p_ += len;
    n_ -= len;
    return s;
  }
  /// Everything not read yet.
  std::string_view rest() {
    std::string_view s(reinterpret_cast<const char*>(p_), n_);
    p_ += n_;
    n_ = 0;
    return s;
  }

private:
  const std::uint8_t* p_;
  std::size_t n_;
};

}  // namespace netlab::fuzz
