// Hub: the io_context run by several threads while other threads play clients.
// Every hub entry point posts onto one strand, so this must deliver exactly
// what a single thread would; the TSan build of the suite checks the rest.
#include <catch2/catch.hpp>

#include <atomic>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/strand.hpp>

#include "support/json_reader.hpp"
#include "wshub/hub.hpp"
#include "wshub/local_pubsub.hpp"

using namespace wshub;

namespace {

// A transport whose client side is driven from many threads at once.
class ThreadedTransport {
public:
    void set_handlers(TransportHandlers handlers) { handlers_ = std::move(handlers); }
    void send(ConnectionId id, const SharedFrame& frame) {
        std::lock_guard<std::mutex> lock(mutex_);
        inbox_[id].push_back(frame->payload);
        if (frame->kind == FrameKind::message) ++messages_;
    }
    void close(ConnectionId id, std::uint16_t, std::string_view) { handlers_.on_close(id); }
    void terminate(ConnectionId) {}
    QueueStats queued(ConnectionId) const { return {}; }
    void stop_accepting() {}

    ConnectionId open() {
        const ConnectionId id = next_.fetch_add(1);
        handlers_.on_open(id, {});
        return id;
    }
    void client_sends(ConnectionId id, std::string text) {
        handlers_.on_message(id, std::move(text), MessageKind::text);
    }
    std::size_t messages() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return messages_;
    }
    std::size_t acks(ConnectionId id) const {
        std::lock_guard<std::mutex> lock(mutex_);
        const auto it = inbox_.find(id);
        return it == inbox_.end() ? 0 : test::frames_of_type(it->second, "ack").size();
    }

private:
    TransportHandlers handlers_;
    mutable std::mutex mutex_;
    std::map<ConnectionId, std::vector<std::string>> inbox_;
    std::size_t messages_ = 0;
    std::atomic<ConnectionId> next_{1};
};

bool wait_for(const std::function<bool()>& done) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!done()) {
        if (std::chrono::steady_clock::now() > until) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return true;
}

}  // namespace

TEST_CASE("a hub on an io_context run by four threads delivers exactly once", "[hub][threads]") {
    asio::io_context io;
    auto work = asio::make_work_guard(io);
    ThreadedTransport transport;
    // Several threads run the io_context: the hub and its PubSub share one strand.
    const asio::any_io_executor strand = asio::make_strand(io);
    LocalPubSub pubsub(strand);
    HubConfig config;
    config.instance_id = "mt";
    config.publish_rate_per_second = 0;
    Hub<ThreadedTransport, LocalPubSub> hub(strand, transport, pubsub, config);
    std::vector<std::thread> runners;
    for (int i = 0; i < 4; ++i) runners.emplace_back([&io] { io.run(); });

    constexpr int clients = 8;
    constexpr int publishes_each = 50;
    std::vector<ConnectionId> ids(clients);
    {
        std::vector<std::thread> players;
        for (int c = 0; c < clients; ++c) {
            players.emplace_back([&, c] {
                ids[c] = transport.open();
                transport.client_sends(ids[c], R"({"type":"subscribe","channel":"room","id":1})");
            });
        }
        for (auto& t : players) t.join();
    }
    REQUIRE(wait_for([&] {
        for (const auto id : ids) {
            if (transport.acks(id) != 1) return false;
        }
        return true;
    }));
    {
        std::vector<std::thread> players;
        for (int c = 0; c < clients; ++c) {
            players.emplace_back([&, c] {
                for (int i = 0; i < publishes_each; ++i) {
                    transport.client_sends(ids[c], R"({"type":"publish","channel":"room","data":)" +
                                                       std::to_string(i) + "}");
                }
            });
        }
        for (auto& t : players) t.join();
    }
    const std::size_t expected = std::size_t{clients} * clients * publishes_each;
    REQUIRE(wait_for([&] { return transport.messages() >= expected; }));
    CHECK(hub.stats().publishes == std::size_t{clients} * publishes_each);

    std::atomic<bool> done{false};
    hub.shutdown([&] { done = true; });
    REQUIRE(wait_for([&] { return done.load(); }));
    CHECK(transport.messages() == expected);  // nothing duplicated
    CHECK(hub.stats().connections == 0);
    work.reset();
    for (auto& t : runners) t.join();
}
