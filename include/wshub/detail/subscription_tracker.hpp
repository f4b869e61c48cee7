// wshub/detail/subscription_tracker.hpp: the lazy-subscription state machine
// of one channel, with no I/O in it.
//
// The hub says whether it wants the channel (it has local subscribers) and
// reports completions of the PubSub calls; the tracker answers with the one
// command to issue next, if any. At most one PubSub call per channel is in
// flight, so a subscribe still in flight when the channel empties, or an
// unsubscribe followed at once by a subscribe, ends in the right state with no
// duplicate and no lost subscription: the tracker simply issues the opposite
// command when the in-flight one completes and the wish has changed.
//
// Thread safety: none; used on the hub's strand.
#pragma once

#include <cstdint>

namespace wshub::detail {

class SubscriptionTracker {
public:
    enum class Phase : std::uint8_t { idle, subscribing, active, unsubscribing };
    enum class Command : std::uint8_t { none, subscribe, unsubscribe };

    // The hub's wish changed (first local subscriber joined: true; last left: false).
    Command set_wanted(bool wanted) noexcept {
        wanted_ = wanted;
        return next();
    }

    // The in-flight subscribe completed. On failure the topic is not subscribed.
    Command on_subscribe_done(bool ok) noexcept {
        phase_ = ok ? Phase::active : Phase::idle;
        if (!ok) {
            // A failed subscribe is reported to whoever waited; retrying is the
            // caller's decision, so the wish is cleared rather than looping.
            wanted_ = false;
            return Command::none;
        }
        return next();
    }

    // The in-flight unsubscribe completed; the topic is not subscribed now.
    Command on_unsubscribe_done() noexcept {
        phase_ = Phase::idle;
        return next();
    }

    Phase phase() const noexcept { return phase_; }
    bool wanted() const noexcept { return wanted_; }
    bool active() const noexcept { return phase_ == Phase::active; }
    bool in_flight() const noexcept { return phase_ == Phase::subscribing || phase_ == Phase::unsubscribing; }
    // Nothing subscribed, nothing in flight, nothing wanted: the channel can be forgotten.
    bool settled_idle() const noexcept { return phase_ == Phase::idle && !wanted_; }

private:
    Command next() noexcept {
        if (wanted_ && phase_ == Phase::idle) {
            phase_ = Phase::subscribing;
            return Command::subscribe;
        }
        if (!wanted_ && phase_ == Phase::active) {
            phase_ = Phase::unsubscribing;
            return Command::unsubscribe;
        }
        return Command::none;
    }

    Phase phase_ = Phase::idle;
    bool wanted_ = false;
};

}  // namespace wshub::detail
