#include "netlab/core/load.hpp"

#include <algorithm>
#include <cstdio>

namespace netlab::core {

std::size_t latency_histogram::index_of(std::uint64_t v) noexcept {
  if (v < (1u << sub_bits)) return static_cast<std::size_t>(v);
  unsigned msb = 63u - static_cast<unsigned>(__builtin_clzll(v));  // >= sub_bits
  unsigned shift = msb - sub_bits + 1;
  std::size_t sub = static_cast<std::size_t>((v >> shift) & ((1u << sub_bits) - 1));
  // Block 0 holds 0..127 exactly; a larger value keeps its top 7 bits (64..127) in block `shift`,
  // so each power of two has 64 buckets: under 1.6% error.
  return (static_cast<std::size_t>(shift) << sub_bits) + sub;
}

std::uint64_t latency_histogram::value_of(std::size_t index) noexcept {
  std::size_t block = index >> sub_bits;
  std::uint64_t sub = index & ((1u << sub_bits) - 1);
  if (block == 0) return sub;
  // In block k the value was shifted right by k, so sub (64..127) holds its top 7 bits.
  unsigned shift = static_cast<unsigned>(block);
  return (sub << shift) + ((std::uint64_t{1} << shift) - 1);
}

void latency_histogram::record(std::chrono::nanoseconds d) noexcept {
  auto v = static_cast<std::uint64_t>(std::max<std::int64_t>(0, d.count()));
  ++counts_[index_of(v)];
  ++count_;
  max_ = std::max(max_, v);
  min_ = std::min(min_, v);
  sum_ += static_cast<long double>(v);
}

void latency_histogram::merge(const latency_histogram& o) noexcept {
  for (std::size_t i = 0; i < buckets; ++i) counts_[i] += o.counts_[i];
  count_ += o.count_;
  max_ = std::max(max_, o.max_);
  min_ = std::min(min_, o.min_);
  sum_ += o.sum_;
}

std::chrono::nanoseconds latency_histogram::percentile(double q) const noexcept {
  if (count_ == 0) return std::chrono::nanoseconds(0);
  q = std::clamp(q, 0.0, 1.0);
  auto rank = static_cast<std::uint64_t>(q * static_cast<double>(count_) + 0.5);
  rank = std::clamp<std::uint64_t>(rank, 1, count_);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < buckets; ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::chrono::nanoseconds(std::min(value_of(i), max_));
  }
  return std::chrono::nanoseconds(max_);
}

std::chrono::nanoseconds latency_histogram::mean() const noexcept {
  if (count_ == 0) return std::chrono::nanoseconds(0);
  return std::chrono::nanoseconds(static_cast<std::int64_t>(sum_ / static_cast<long double>(count_)));
}

void load_stats::error(outcome o) {
  ++errors;
  if (!first_error.ok()) return;
  if (o.ok()) o = outcome::fail(exit_code::internal, "an error without a description");  // a bug: never ok
  first_error = std::move(o);
  first_at = std::chrono::steady_clock::now();
}

load_stats& load_stats::operator+=(const load_stats& o) {
  messages += o.messages;
  bytes += o.bytes;
  errors += o.errors;
  connect_errors += o.connect_errors;
  elapsed = std::max(elapsed, o.elapsed);
  latency.merge(o.latency);
  if (!o.first_error.ok() && (first_error.ok() || o.first_at < first_at)) {
    first_error = o.first_error;
    first_at = o.first_at;
  }
  return *this;
}

outcome load_verdict(const load_stats& s, bool interrupted) {
  if (interrupted) return outcome::fail(exit_code::interrupted, "load run interrupted by a signal");
  if (s.errors == 0) return outcome::success();
  const outcome& f = s.first_error.ok() ? outcome::fail(exit_code::internal, "an error without a description")
                                        : s.first_error;
  std::string what = std::to_string(s.errors) + " error(s) in the load run";
  if (s.connect_errors > 0) what += " (" + std::to_string(s.connect_errors) + " connecting)";
  return outcome::fail(f.code, what + "; first: " + f.what, f.hint);
}

nlohmann::json load_json(std::string_view proto, const load_options& opt, const load_stats& s) {
  double secs = std::chrono::duration<double>(s.elapsed).count();
  auto us = [](std::chrono::nanoseconds d) { return static_cast<double>(d.count()) / 1000.0; };
  const auto& h = s.latency;
  return {{"event", "load"},
          {"proto", proto},
          {"connections", opt.connections},
          {"size", opt.size},
          {"pipeline", opt.pipeline},
          {"messages", s.messages},
          {"bytes", s.bytes},
          {"errors", s.errors},
          {"connect_errors", s.connect_errors},
          {"seconds", secs},
          {"msgs_per_s", secs > 0 ? static_cast<double>(s.messages) / secs : 0.0},
          {"mb_per_s", secs > 0 ? static_cast<double>(s.bytes) / secs / 1e6 : 0.0},
          {"latency_us",
           {{"min", us(h.min())},
            {"mean", us(h.mean())},
            {"p50", us(h.percentile(0.50))},
            {"p90", us(h.percentile(0.90))},
            {"p99", us(h.percentile(0.99))},
            {"p99_9", us(h.percentile(0.999))},
            {"max", us(h.max())}}}};
}

void report_load(reporter& out, std::string_view proto, const load_options& opt, const load_stats& s) {
  auto j = load_json(proto, opt, s);
  const auto& l = j["latency_us"];
  char text[640];
  std::snprintf(text, sizeof text,
                "%s load: %llu msgs of %zu B over %u connection(s) in %.2fs\n"
                "  %.0f msgs/s  %.2f MB/s  errors %llu\n"
                "  latency us: p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f",
                std::string(proto).c_str(), static_cast<unsigned long long>(s.messages), opt.size,
                opt.connections, j["seconds"].get<double>(), j["msgs_per_s"].get<double>(),
                j["mb_per_s"].get<double>(), static_cast<unsigned long long>(s.errors), l["p50"].get<double>(),
                l["p90"].get<double>(), l["p99"].get<double>(), l["p99_9"].get<double>(), l["max"].get<double>());
  out.result(j, text);
}

}  // namespace netlab::core
