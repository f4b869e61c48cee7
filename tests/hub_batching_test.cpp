// Hub: per-tick coalescing. The messages a channel receives in one pass of
// the io_context are fanned out together: to a transport that declares
// `sends_batches` as one batch frame per subscriber, to any other one by one.
// Either way every subscriber sees the channel's events in the PubSub's order,
// and membership changes in the same tick neither lose nor leak messages.
#include <catch2/catch.hpp>

#include <functional>
#include <string>
#include <vector>

#include "support/fake_pubsub.hpp"
#include "support/hub_fixture.hpp"
#include "wshub/detail/envelope.hpp"
#include "wshub/local_pubsub.hpp"

#include <asio/post.hpp>
#include <asio/strand.hpp>

using namespace wshub;
using namespace wshub::test;

namespace {

HubConfig batching_config() {
    HubConfig config = HubFixture<FakePubSub>::test_config();
    config.presence_prefixes = {"room"};
    return config;
}

template <class Transport, class Policies = DefaultPolicies>
struct Fixture : HubFixture<FakePubSub, Policies, Transport> {
    explicit Fixture(HubConfig config = batching_config()) : HubFixture<FakePubSub, Policies, Transport>(config) {}

    // Subscribes and completes the PubSub's subscribe (if the hub made one).
    void subscribe(ConnectionId id, const std::string& channel) {
        this->request(id, R"({"type":"subscribe","channel":")" + channel + R"("})");
        this->pubsub.complete_all();
        settle(this->io);
    }

    // A message from another instance, as the PubSub hands it over; not yet run.
    void arrives(const std::string& channel, const std::string& data) {
        this->pubsub.deliver(this->topic(channel), detail::encode_envelope("elsewhere", data));
    }

    static std::string message(const std::string& channel, const std::string& data) {
        return R"({"type":"message","channel":")" + channel + R"(","data":)" + data + "}";
    }

    // The frames of types message/join/leave the client took, in order.
    std::vector<std::string> channel_events(ConnectionId id) const {
        std::vector<std::string> out;
        for (const auto& f : this->received(id)) {
            const auto type = frame_type(f);
            if (type == "message" || type == "join" || type == "leave") out.push_back(f);
        }
        return out;
    }
};

using Batching = Fixture<BatchingMemoryTransport>;
using OneByOne = Fixture<MemoryTransport>;

}  // namespace

TEST_CASE_METHOD(Batching, "one tick's messages reach each subscriber as one shared batch frame, in order",
                 "[hub][batching]") {
    const auto a = connect();
    const auto b = connect();
    const auto outsider = connect();
    subscribe(a, "news");
    subscribe(b, "news");
    subscribe(outsider, "other");
    const auto sent_before = transport.peer(a).sent.size();
    const auto out_before = hub.stats().messages_out;
    const auto bytes_before = hub.stats().bytes_out;

    arrives("news", "1");
    arrives("news", "2");
    arrives("news", "3");
    arrives("other", "9");
    settle(io);

    for (const auto id : {a, b}) {
        const auto& sent = transport.peer(id).sent;
        REQUIRE(sent.size() == sent_before + 1);  // one send for three messages
        REQUIRE(sent.back()->batch.size() == 3);
        CHECK(sent.back()->kind == FrameKind::message);
        CHECK(channel_events(id) == std::vector<std::string>{message("news", "1"), message("news", "2"),
                                                             message("news", "3")});
    }
    CHECK(transport.peer(a).sent.back() == transport.peer(b).sent.back());  // one buffer for every subscriber
    // "other" had a single message: sent as itself, not as a batch of one.
    CHECK(transport.peer(outsider).sent.back()->batch.empty());
    CHECK(channel_events(outsider) == std::vector<std::string>{message("other", "9")});
    CHECK(hub.stats().batches == 1);
    CHECK(hub.stats().messages_out == out_before + 3 + 3 + 1);  // counted per message, not per batch
    const auto news = message("news", "1").size() + message("news", "2").size() + message("news", "3").size();
    CHECK(hub.stats().bytes_out == bytes_before + 2 * news + message("other", "9").size());

    // The next tick starts a new batch.
    arrives("news", "4");
    settle(io);
    CHECK(channel_events(a).back() == message("news", "4"));
    CHECK(transport.peer(a).sent.back()->batch.empty());
}

TEST_CASE_METHOD(OneByOne, "a transport without sends_batches gets the same messages one by one, in order",
                 "[hub][batching]") {
    const auto a = connect();
    subscribe(a, "news");
    const auto sent_before = transport.peer(a).sent.size();
    arrives("news", "1");
    arrives("news", "2");
    arrives("news", "3");
    settle(io);
    const auto& sent = transport.peer(a).sent;
    REQUIRE(sent.size() == sent_before + 3);
    for (std::size_t i = sent_before; i < sent.size(); ++i) CHECK(sent[i]->batch.empty());
    CHECK(channel_events(a) ==
          std::vector<std::string>{message("news", "1"), message("news", "2"), message("news", "3")});
    CHECK(hub.stats().batches == 0);
}

TEST_CASE_METHOD(Batching, "a join or leave between two messages of a tick is delivered between them",
                 "[hub][batching][presence]") {
    const auto a = connect();
    subscribe(a, "room:1");
    const auto before = channel_events(a).size();  // a's own join
    arrives("room:1", "1");
    pubsub.deliver(topic("room:1"), detail::encode_presence_event(true, "elsewhere-7", "bob"));
    arrives("room:1", "2");
    pubsub.deliver(topic("room:1"), detail::encode_presence_event(false, "elsewhere-7", "bob"));
    arrives("room:1", "3");
    settle(io);
    const auto events = channel_events(a);
    REQUIRE(events.size() == before + 5);
    CHECK(events[before + 0] == message("room:1", "1"));
    CHECK(frame_type(events[before + 1]) == "join");
    CHECK(string_field(events[before + 1], "connection") == "elsewhere-7");
    CHECK(events[before + 2] == message("room:1", "2"));
    CHECK(frame_type(events[before + 3]) == "leave");
    CHECK(events[before + 4] == message("room:1", "3"));
}

TEST_CASE_METHOD(Batching, "in the tick of a message, a newcomer does not get it and a leaver still does",
                 "[hub][batching]") {
    const auto stays = connect();
    const auto leaver = connect();
    const auto newcomer = connect();
    subscribe(stays, "news");
    subscribe(leaver, "news");

    // Each group below is queued before any of it runs: one tick.
    arrives("news", "1");
    transport.receive(newcomer, R"({"type":"subscribe","channel":"news","id":"s"})");
    arrives("news", "2");
    settle(io);
    arrives("news", "3");
    transport.receive(leaver, R"({"type":"unsubscribe","channel":"news","id":"u"})");
    arrives("news", "4");
    settle(io);

    CHECK(channel_events(stays) == std::vector<std::string>{message("news", "1"), message("news", "2"),
                                                            message("news", "3"), message("news", "4")});
    CHECK(channel_events(newcomer) ==
          std::vector<std::string>{message("news", "2"), message("news", "3"), message("news", "4")});
    CHECK(channel_events(leaver) ==
          std::vector<std::string>{message("news", "1"), message("news", "2"), message("news", "3")});
}

TEST_CASE_METHOD(Batching, "a channel whose last subscriber leaves with a batch queued is still cleaned up",
                 "[hub][batching]") {
    const auto a = connect();
    subscribe(a, "news");
    arrives("news", "1");
    arrives("news", "2");
    transport.disconnect(a);  // on_close is queued behind the two messages
    settle(io);
    pubsub.complete_all();  // the lazy unsubscribe
    settle(io);
    CHECK(hub.stats().channels == 0);
    CHECK(hub.stats().subscriptions == 0);
}

namespace {
struct DropPolicies : DefaultPolicies {
    using slow_client = DropAndGap;
};
HubConfig small_queue_config() {
    HubConfig config = batching_config();
    config.max_queue_messages = 4;
    config.drain_check_interval = std::chrono::milliseconds(5);
    return config;
}
struct DroppingBatches : Fixture<BatchingMemoryTransport, DropPolicies> {
    DroppingBatches() : Fixture<BatchingMemoryTransport, DropPolicies>(small_queue_config()) {}
};
}  // namespace

TEST_CASE_METHOD(DroppingBatches, "a batch over the queue limit is dropped whole and counted per message",
                 "[hub][batching][slow]") {
    const auto slow = connect();
    const auto fast = connect();
    subscribe(slow, "news");
    subscribe(fast, "news");
    transport.stall(slow);
    arrives("news", "1");
    arrives("news", "2");
    arrives("news", "3");
    settle(io);  // 3 queued: under the limit of 4
    CHECK(transport.queued(slow).messages == 3);
    arrives("news", "4");
    arrives("news", "5");
    settle(io);  // 3 + 2 > 4: both dropped
    CHECK(transport.queued(slow).messages == 3);
    CHECK(hub.stats().dropped_messages == 2);
    CHECK(channel_events(fast).size() == 5);  // the others lose nothing

    transport.drain(slow);
    REQUIRE(run_until(io, [&] { return !received_of_type(slow, "gap").empty(); }));
    CHECK(channel_events(slow) ==
          std::vector<std::string>{message("news", "1"), message("news", "2"), message("news", "3")});
}

namespace {
// A transport that, while the hub is handing it a frame, has the client
// answer at once: the handler runs inside the hub's own call.
struct ReenteringTransport : MemoryTransport {
    std::function<void(ConnectionId, const SharedFrame&)> on_send;
    void send(ConnectionId id, const SharedFrame& frame) {
        MemoryTransport::send(id, frame);
        if (on_send) on_send(id, frame);
    }
};
using Reentering = Fixture<ReenteringTransport>;
}  // namespace

TEST_CASE_METHOD(Reentering, "a handler called from inside the hub's own call is queued, not run inside the fan-out",
                 "[hub][batching][threading]") {
    const auto first = connect();
    const auto second = connect();
    const auto third = connect();
    for (const auto id : {first, second, third}) subscribe(id, "news");
    // The first subscriber leaves the moment its copy is handed over. Run
    // inline, the leave would reorder the members the fan-out is walking and
    // the last of them would miss the message.
    std::uint64_t subscriptions_inside = 0;
    bool fired = false;
    transport.on_send = [&](ConnectionId id, const SharedFrame& frame) {
        if (!fired && id == first && frame->kind == FrameKind::message) {
            fired = true;
            transport.receive(first, R"({"type":"unsubscribe","channel":"news","id":"bye"})");
            subscriptions_inside = hub.stats().subscriptions;  // 2 if the leave ran inside this call
        }
    };
    arrives("news", "1");
    settle(io);
    CHECK(subscriptions_inside == 3);
    for (const auto id : {first, second, third}) {
        INFO("subscriber " << id);
        CHECK(channel_events(id) == std::vector<std::string>{message("news", "1")});
    }
    REQUIRE_FALSE(received_of_type(first, "ack").empty());
    CHECK(string_field(received_of_type(first, "ack").back(), "id") == "bye");
    CHECK(hub.stats().subscriptions == 2);
}

// Two clients publishing in the same pass of the io_context, on the
// in-process PubSub sharing the hub's strand (as it must): their messages
// reach a subscriber in one write, as several messages of one Redis read do.
// Each publish comes from a handler of its own, as two connections' reads do.
TEST_CASE("publishes of two clients in one tick, on LocalPubSub, reach a subscriber as one batch", "[hub][batching]") {
    asio::io_context io;
    const asio::any_io_executor strand = asio::make_strand(io);
    BatchingMemoryTransport transport;
    LocalPubSub pubsub(strand);
    Hub<BatchingMemoryTransport, LocalPubSub> hub(strand, transport, pubsub, HubFixture<LocalPubSub>::test_config());
    const auto subscriber = transport.connect({});
    const auto alice = transport.connect({});
    const auto bob = transport.connect({});
    transport.receive(subscriber, R"({"type":"subscribe","channel":"news"})");
    settle(io);
    const auto sent_before = transport.peer(subscriber).sent.size();
    asio::post(io, [&] { transport.receive(alice, R"({"type":"publish","channel":"news","data":"a"})"); });
    asio::post(io, [&] { transport.receive(bob, R"({"type":"publish","channel":"news","data":"b"})"); });
    settle(io);
    const auto& sent = transport.peer(subscriber).sent;
    REQUIRE(sent.size() == sent_before + 1);
    CHECK(sent.back()->batch.size() == 2);
    CHECK(frames_of_type(transport.peer(subscriber).received, "message") ==
          std::vector<std::string>{R"({"type":"message","channel":"news","data":"a"})",
                                   R"({"type":"message","channel":"news","data":"b"})"});
}
