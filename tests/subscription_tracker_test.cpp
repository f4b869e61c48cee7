// detail::SubscriptionTracker: the lazy-subscription state machine, with no I/O.
#include <catch2/catch.hpp>

#include "wshub/detail/subscription_tracker.hpp"

using wshub::detail::SubscriptionTracker;
using Command = SubscriptionTracker::Command;
using Phase = SubscriptionTracker::Phase;

TEST_CASE("wanting an idle channel subscribes once", "[tracker]") {
    SubscriptionTracker t;
    CHECK(t.settled_idle());
    CHECK(t.set_wanted(true) == Command::subscribe);
    CHECK(t.phase() == Phase::subscribing);
    CHECK(t.set_wanted(true) == Command::none);  // no duplicate while in flight
    CHECK(t.on_subscribe_done(true) == Command::none);
    CHECK(t.active());
}

TEST_CASE("not wanting an active channel unsubscribes once", "[tracker]") {
    SubscriptionTracker t;
    t.set_wanted(true);
    t.on_subscribe_done(true);
    CHECK(t.set_wanted(false) == Command::unsubscribe);
    CHECK(t.set_wanted(false) == Command::none);
    CHECK(t.on_unsubscribe_done() == Command::none);
    CHECK(t.settled_idle());
}

TEST_CASE("subscribe in flight when the wish goes away: unsubscribe after it completes", "[tracker]") {
    SubscriptionTracker t;
    t.set_wanted(true);
    CHECK(t.set_wanted(false) == Command::none);
    CHECK(t.on_subscribe_done(true) == Command::unsubscribe);
    CHECK(t.phase() == Phase::unsubscribing);
    CHECK(t.on_unsubscribe_done() == Command::none);
    CHECK(t.settled_idle());
}

TEST_CASE("unsubscribe in flight when wanted again: subscribe after it completes", "[tracker]") {
    SubscriptionTracker t;
    t.set_wanted(true);
    t.on_subscribe_done(true);
    t.set_wanted(false);
    CHECK(t.set_wanted(true) == Command::none);
    CHECK(t.on_unsubscribe_done() == Command::subscribe);
    CHECK(t.on_subscribe_done(true) == Command::none);
    CHECK(t.active());
}

TEST_CASE("wish flapping during a call ends in the last wish with one call per change of phase", "[tracker]") {
    SubscriptionTracker t;
    int calls = 0;
    auto count = [&](Command c) { calls += c == Command::none ? 0 : 1; };
    count(t.set_wanted(true));
    for (int i = 0; i < 100; ++i) {
        count(t.set_wanted(false));
        count(t.set_wanted(true));
    }
    count(t.on_subscribe_done(true));
    CHECK(calls == 1);
    CHECK(t.active());
}

TEST_CASE("a failed subscribe leaves the channel idle and unwanted", "[tracker]") {
    SubscriptionTracker t;
    t.set_wanted(true);
    CHECK(t.on_subscribe_done(false) == Command::none);
    CHECK(t.settled_idle());
    CHECK(t.set_wanted(true) == Command::subscribe);  // a later wish tries again
}
