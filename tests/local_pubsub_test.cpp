// LocalPubSub: the in-process PubSub, on a real io_context.
#include <catch2/catch.hpp>

#include <asio/io_context.hpp>

#include "support/run_until.hpp"
#include "wshub/local_pubsub.hpp"

using namespace wshub;
using namespace wshub::test;

namespace {
struct Recorder {
    std::vector<std::pair<std::string, std::string>> messages;
    PubSubHandlers handlers() {
        return {[this](std::string t, std::string p) { messages.emplace_back(std::move(t), std::move(p)); },
                [](PubSubState) {}, [](std::vector<std::string>) {}};
    }
};
}  // namespace

TEST_CASE("delivers to subscribed topics only, in order, never inside the call", "[local_pubsub]") {
    asio::io_context io;
    LocalPubSub ps(io.get_executor());
    Recorder rec;
    ps.set_handlers(rec.handlers());
    int completions = 0;
    ps.subscribe("a", [&](std::error_code ec) {
        CHECK_FALSE(ec);
        ++completions;
    });
    CHECK(completions == 0);  // not inside the call
    for (int i = 0; i < 5; ++i) ps.publish("a", std::to_string(i), [&](std::error_code ec) {
        CHECK_FALSE(ec);
        ++completions;
    });
    ps.publish("b", "nobody listens", {});
    CHECK(rec.messages.empty());  // not inside the call
    settle(io);
    CHECK(completions == 6);
    REQUIRE(rec.messages.size() == 5);
    for (int i = 0; i < 5; ++i) {
        CHECK(rec.messages[i].first == "a");
        CHECK(rec.messages[i].second == std::to_string(i));
    }
    CHECK(ps.state() == PubSubState::up);
}

TEST_CASE("a message published before an unsubscribe is not delivered after it", "[local_pubsub]") {
    asio::io_context io;
    LocalPubSub ps(io.get_executor());
    Recorder rec;
    ps.set_handlers(rec.handlers());
    ps.subscribe("a", {});
    ps.publish("a", "late", {});
    ps.unsubscribe("a", {});
    settle(io);
    CHECK(rec.messages.empty());
    CHECK_FALSE(ps.is_subscribed("a"));
    CHECK(ps.subscribed_topics() == 0);
}

TEST_CASE("one pass's publishes are delivered by one handler; a publish made while delivering waits for the next",
          "[local_pubsub]") {
    asio::io_context io;
    LocalPubSub ps(io.get_executor());
    std::vector<std::string> payloads;
    ps.set_handlers({[&](std::string, std::string payload) {
                         if (payload == "1") ps.publish("a", "echo", {});
                         payloads.push_back(std::move(payload));
                     },
                     [](PubSubState) {}, [](std::vector<std::string>) {}});
    ps.subscribe("a", {});
    settle(io);
    for (const char* p : {"1", "2", "3"}) ps.publish("a", p, {});
    io.restart();  // settle() ran the io_context out
    CHECK(io.poll_one() == 1);  // one handler ...
    CHECK(payloads == std::vector<std::string>{"1", "2", "3"});  // ... delivered all three, in order
    settle(io);
    CHECK(payloads == std::vector<std::string>{"1", "2", "3", "echo"});
}
