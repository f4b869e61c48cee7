// The Transport, PubSub and Registry concepts: every shipped implementation satisfies
// them, and a type missing a member is rejected (here by the traits; the
// compile-fail tests in tests/compile_fail/ prove the static_assert messages).
#include <catch2/catch.hpp>

#include "support/fake_pubsub.hpp"
#include "support/memory_transport.hpp"
#include "wshub/connection_registry.hpp"
#include "wshub/local_pubsub.hpp"
#include "wshub/pubsub_concept.hpp"
#include "wshub/registry_concept.hpp"
#include "wshub/redis_pubsub.hpp"
#include "wshub/transport_concept.hpp"
#include "wshub/websocketpp_transport.hpp"

using namespace wshub;

namespace {

struct CompleteTransport {
    void set_handlers(TransportHandlers) {}
    void send(ConnectionId, const SharedFrame&) {}
    void close(ConnectionId, std::uint16_t, std::string_view) {}
    void terminate(ConnectionId) {}
    QueueStats queued(ConnectionId) const { return {}; }
    void stop_accepting() {}
};
struct NoSend {
    void set_handlers(TransportHandlers) {}
    void close(ConnectionId, std::uint16_t, std::string_view) {}
    void terminate(ConnectionId) {}
    QueueStats queued(ConnectionId) const { return {}; }
    void stop_accepting() {}
};
struct QueuedNotConst {
    void set_handlers(TransportHandlers) {}
    void send(ConnectionId, const SharedFrame&) {}
    void close(ConnectionId, std::uint16_t, std::string_view) {}
    void terminate(ConnectionId) {}
    QueueStats queued(ConnectionId) { return {}; }
    void stop_accepting() {}
};
struct NoStopAccepting {
    void set_handlers(TransportHandlers) {}
    void send(ConnectionId, const SharedFrame&) {}
    void close(ConnectionId, std::uint16_t, std::string_view) {}
    void terminate(ConnectionId) {}
    QueueStats queued(ConnectionId) const { return {}; }
};

struct NoPublish {
    void set_handlers(PubSubHandlers) {}
    void subscribe(const std::string&, Completion) {}
    void unsubscribe(const std::string&, Completion) {}
    PubSubState state() const { return PubSubState::up; }
};
struct NoState {
    void set_handlers(PubSubHandlers) {}
    void subscribe(const std::string&, Completion) {}
    void unsubscribe(const std::string&, Completion) {}
    void publish(const std::string&, std::string, Completion) {}
};

// A registry without presence queries.
struct NoPresenceMembers {
    static constexpr bool distributed = true;
    void start(const std::string&, const std::string&) {}
    void add_connection(const std::string&, const ConnectionInfo&) {}
    void remove_connection(const std::string&) {}
    void lookup(const std::string&, LookupHandler) {}
    void send_to_connection(const std::string&, std::string, Completion) {}
    void send_to_user(const std::string&, std::string, DeliveryHandler) {}
    void presence_add(const std::string&, const std::string&) {}
    void presence_remove(const std::string&, const std::string&) {}
    void close(Completion) {}
};

}  // namespace

TEST_CASE("shipped registries satisfy the Registry concept", "[concepts]") {
    STATIC_REQUIRE(is_registry_v<NoRegistry>);
    STATIC_REQUIRE(check_registry<NoRegistry>());
    STATIC_REQUIRE(is_registry_v<ConnectionRegistry>);
    STATIC_REQUIRE(check_registry<ConnectionRegistry>());
    STATIC_REQUIRE_FALSE(is_registry_v<NoPresenceMembers>);
    STATIC_REQUIRE_FALSE(detail::has_presence_members<NoPresenceMembers>::value);
    STATIC_REQUIRE_FALSE(is_registry_v<LocalPubSub>);
    STATIC_REQUIRE_FALSE(is_registry_v<int>);
}

TEST_CASE("shipped transports satisfy the Transport concept", "[concepts]") {
    STATIC_REQUIRE(is_transport_v<test::MemoryTransport>);
    STATIC_REQUIRE(check_transport<test::MemoryTransport>());
    STATIC_REQUIRE(is_transport_v<CompleteTransport>);
    STATIC_REQUIRE(is_transport_v<WebsocketppTransport>);
    STATIC_REQUIRE(check_transport<WebsocketppTransport>());
}

TEST_CASE("shipped PubSubs satisfy the PubSub concept", "[concepts]") {
    STATIC_REQUIRE(is_pubsub_v<LocalPubSub>);
    STATIC_REQUIRE(check_pubsub<LocalPubSub>());
    STATIC_REQUIRE(is_pubsub_v<test::FakePubSub>);
    STATIC_REQUIRE(is_pubsub_v<RedisPubSub>);
    STATIC_REQUIRE(check_pubsub<RedisPubSub>());
}

TEST_CASE("types missing a member are rejected", "[concepts]") {
    STATIC_REQUIRE_FALSE(is_transport_v<NoSend>);
    STATIC_REQUIRE_FALSE(detail::has_send<NoSend>::value);
    STATIC_REQUIRE_FALSE(is_transport_v<QueuedNotConst>);
    STATIC_REQUIRE_FALSE(is_transport_v<NoStopAccepting>);
    STATIC_REQUIRE_FALSE(is_transport_v<int>);
    STATIC_REQUIRE_FALSE(is_pubsub_v<NoPublish>);
    STATIC_REQUIRE_FALSE(is_pubsub_v<NoState>);
    STATIC_REQUIRE_FALSE(is_pubsub_v<test::MemoryTransport>);
    STATIC_REQUIRE_FALSE(is_transport_v<LocalPubSub>);
}
