#pragma once
/// Closed-loop load mode shared by tcp dial, udp send and ws-echo dial: options, latency
/// histogram, and the report (text or one JSON object).
#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "netlab/core/error.hpp"
#include "netlab/core/report.hpp"

namespace netlab::core {

/// What the load generator does: C connections, each sending `size`-byte messages and waiting for
/// the echo, until `count` messages in total or `duration` elapses.
struct load_options {
  unsigned connections = 1;
  std::uint64_t count = 0;                 ///< total messages (0: use duration)
  std::chrono::milliseconds duration{0};   ///< run time (0: use count)
  std::size_t size = 64;                   ///< payload bytes per message
  unsigned pipeline = 1;                   ///< messages in flight per connection
  unsigned threads = 1;                    ///< worker threads, each with its own io_context
};

/// Log-linear latency histogram (HdrHistogram-like, < 1.6% error), fixed memory, mergeable.
class latency_histogram {
 public:
  void record(std::chrono::nanoseconds d) noexcept;
  void merge(const latency_histogram& o) noexcept;
  std::uint64_t count() const noexcept { return count_; }
  /// The value at or below which `q` (0..1) of the samples fall.
  std::chrono::nanoseconds percentile(double q) const noexcept;
  std::chrono::nanoseconds max() const noexcept { return std::chrono::nanoseconds(max_); }
  std::chrono::nanoseconds min() const noexcept { return std::chrono::nanoseconds(count_ ? min_ : 0); }
  std::chrono::nanoseconds mean() const noexcept;

  static constexpr unsigned sub_bits = 7;  ///< values below 128 exact, then 64 buckets per power of two
  static constexpr unsigned buckets = (64 - sub_bits + 1) << sub_bits;
  static std::size_t index_of(std::uint64_t v) noexcept;
  static std::uint64_t value_of(std::size_t index) noexcept;  ///< highest value in the bucket

 private:
  std::array<std::uint64_t, buckets> counts_{};
  std::uint64_t count_ = 0;
  std::uint64_t max_ = 0;
  std::uint64_t min_ = UINT64_MAX;
  long double sum_ = 0;
};

/// Totals of one load run (merge per-worker stats with +=). About 60 KB (the histogram): the load
/// driver keeps one per worker thread, never one per connection.
struct load_stats {
  std::uint64_t messages = 0;  ///< completed round trips
  std::uint64_t bytes = 0;     ///< payload bytes echoed back
  std::uint64_t errors = 0;    ///< failed connections, timeouts, mismatched echoes
  std::uint64_t connect_errors = 0;
  std::chrono::nanoseconds elapsed{0};
  latency_histogram latency;
  outcome first_error;                               ///< the earliest error counted (class, what, hint)
  std::chrono::steady_clock::time_point first_at{};  ///< when it happened (merge keeps the earliest)

  /// Counts one error; the first one keeps its class and description for the verdict.
  void error(outcome o);
  /// Counts one failed connection attempt (also an error).
  void connect_error(outcome o) {
    ++connect_errors;
    error(std::move(o));
  }

  load_stats& operator+=(const load_stats& o);
};

/// The one exit rule of every load mode (docs/exit-codes.md): a signal → interrupted (130); any
/// error counted → the class of the first error, whose description the message carries; else ok.
outcome load_verdict(const load_stats& s, bool interrupted);

/// Prints the report: text lines, or one {"event":"load",...} JSON object.
void report_load(reporter& out, std::string_view proto, const load_options& opt, const load_stats& s);

/// The report as JSON (used by report_load and the benchmarks).
nlohmann::json load_json(std::string_view proto, const load_options& opt, const load_stats& s);

}  // namespace netlab::core
