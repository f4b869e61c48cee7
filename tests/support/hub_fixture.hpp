// tests/support/hub_fixture.hpp: a Hub on the in-memory transport, ready for a test.
//
// Holds an io_context run by the test thread, a MemoryTransport (or another), a PubSub
// (FakePubSub by default, LocalPubSub on request) and the Hub, plus helpers
// to open clients and send them requests.
#pragma once

#include <string>
#include <type_traits>
#include <vector>

#include <asio/io_context.hpp>

#include "support/json_reader.hpp"
#include "support/memory_transport.hpp"
#include "support/run_until.hpp"
#include "wshub/hub.hpp"

namespace wshub::test {

template <class PubSub, class Policies = DefaultPolicies, class Transport = MemoryTransport>
struct HubFixture {
    explicit HubFixture(HubConfig config = test_config())
        : pubsub(make_pubsub()), hub(io.get_executor(), transport, pubsub, std::move(config)) {}

    static HubConfig test_config() {
        HubConfig config;
        config.instance_id = "test1";
        config.prefix = "t:";
        return config;
    }

    // Opens a client and runs the hub until it got its welcome.
    ConnectionId connect(ConnectionInfo info = {}) {
        const ConnectionId id = transport.connect(std::move(info));
        settle(io);
        return id;
    }

    void request(ConnectionId id, std::string text, MessageKind kind = MessageKind::text) {
        transport.receive(id, std::move(text), kind);
        settle(io);
    }

    const std::vector<std::string>& received(ConnectionId id) const { return transport.peer(id).received; }

    std::vector<std::string> received_of_type(ConnectionId id, const std::string& type) const {
        return frames_of_type(received(id), type);
    }

    const std::string& last(ConnectionId id) const { return transport.peer(id).received.back(); }

    std::string topic(const std::string& channel) const { return hub.config().prefix + "ch:" + channel; }

    PubSub make_pubsub() {
        if constexpr (std::is_constructible_v<PubSub, asio::any_io_executor>) {
            return PubSub(io.get_executor());
        } else {
            return PubSub();
        }
    }

    asio::io_context io;
    Transport transport;
    PubSub pubsub;
    Hub<Transport, PubSub, Policies> hub;
};

}  // namespace wshub::test
