// Teaching aid: deterministic loss, duplication and reordering of outgoing packets (--simulate-*).
#pragma once

#include <cstdint>

namespace netlab::tftp {

/// Probabilities in [0, 1] and the seed that makes a run repeatable.
struct fault_options {
  double loss = 0;
  double dup = 0;
  double reorder = 0;
  std::uint64_t seed = 1;
  bool active() const noexcept { return loss > 0 || dup > 0 || reorder > 0; }
};

/// Decides the fate of each outgoing packet from a seeded generator (splitmix64: the same on every
/// platform, unlike std::uniform_real_distribution).
class fault_injector {
public:
  /// What to do with one packet.
  enum class verdict { send, drop, duplicate, delay };

  explicit fault_injector(const fault_options& o = {}) noexcept : o_(o), state_(o.seed) {}
  /// True when any fault is configured.
  bool active() const noexcept { return o_.active(); }
  /// The fate of the next packet.
  verdict next() noexcept {
    if (!o_.active()) return verdict::send;
    const double r = uniform();
    if (r < o_.loss) return verdict::drop;
    if (r < o_.loss + o_.dup) return verdict::duplicate;
    if (r < o_.loss + o_.dup + o_.reorder) return verdict::delay;
    return verdict::send;
  }

private:
  double uniform() noexcept {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    return static_cast<double>(z >> 11) * 0x1.0p-53;
  }

  fault_options o_;
  std::uint64_t state_;
};

}  // namespace netlab::tftp
