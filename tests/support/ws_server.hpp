// tests/support/ws_server.hpp: a Hub on the real websocketpp transport, on an
// ephemeral port of 127.0.0.1, with the io_context run by N threads.
#pragma once

#include <atomic>
#include <chrono>
#include <future>
#include <stdexcept>
#include <thread>
#include <vector>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/strand.hpp>

#include "wshub/hub.hpp"
#include "wshub/local_pubsub.hpp"
#include "wshub/websocketpp_transport.hpp"

namespace wshub::test {

inline WebsocketppTransportConfig ephemeral_port() {
    WebsocketppTransportConfig config;
    config.port = 0;
    return config;
}

template <class PubSub = LocalPubSub, class Policies = DefaultPolicies>
struct WsServer {
    using hub_type = Hub<WebsocketppTransport, PubSub, Policies>;

    explicit WsServer(HubConfig hub_config = {}, WebsocketppTransportConfig transport_config = ephemeral_port(),
                      typename Policies::authorizer authorizer = {})
        : transport(io, std::move(transport_config)),
          pubsub(strand),
          hub(strand, transport, pubsub, std::move(hub_config), std::move(authorizer)) {}

    // Binds and starts `threads` threads running the io_context.
    void start(int threads = 1) {
        if (const auto ec = transport.listen()) throw std::runtime_error("listen: " + ec.message());
        for (int i = 0; i < threads; ++i) runners.emplace_back([this] { io.run(); });
    }

    std::uint16_t port() const { return transport.local_port(); }

    // Graceful shutdown; true when it completed before the deadline.
    bool shutdown(std::chrono::seconds deadline = std::chrono::seconds(30)) {
        auto done = std::make_shared<std::promise<void>>();
        hub.shutdown([done] { done->set_value(); });
        return done->get_future().wait_for(deadline) == std::future_status::ready;
    }

    // Runs fn on the hub's strand and waits for its result.
    template <class F>
    auto on_strand(F fn) -> decltype(fn()) {
        std::packaged_task<decltype(fn())()> task(std::move(fn));
        auto result = task.get_future();
        asio::post(hub.get_executor(), [&task] { task(); });
        return result.get();
    }

    ~WsServer() {
        if (!runners.empty() && !hub.stats().draining) shutdown();
        work.reset();
        io.stop();
        for (auto& t : runners) t.join();
    }

    asio::io_context io;
    // The hub and its PubSub share one strand: the io_context may run on several threads.
    asio::any_io_executor strand = asio::make_strand(io);
    asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(io);
    WebsocketppTransport transport;
    PubSub pubsub;
    hub_type hub;
    std::vector<std::thread> runners;
};

// Waits until pred() holds, polling; false at the deadline.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds deadline = std::chrono::seconds(30)) {
    const auto until = std::chrono::steady_clock::now() + deadline;
    while (!pred()) {
        if (std::chrono::steady_clock::now() > until) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
}

}  // namespace wshub::test
