// tests/support/ws_clients.hpp: real WebSocket clients for end-to-end tests.
//
// TestClients runs websocketpp's client on its own io_context and thread and
// opens any number of connections to a server on 127.0.0.1. A ClientConn
// collects what arrives (frames, the close code, the HTTP status of a refused
// handshake) behind a mutex, and the test waits for it with generous deadlines.
//
// Thread safety: ClientConn's accessors may be called from the test thread
// while the client thread fills it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <websocketpp/client.hpp>
#include <websocketpp/config/asio_no_tls_client.hpp>

namespace wshub::test {

using namespace std::chrono_literals;

class ClientConn {
public:
    enum class State { connecting, open, failed, closed };

    // Waits until the state leaves `connecting`.
    State wait_connected(std::chrono::milliseconds deadline = 20s) {
        std::unique_lock<std::mutex> lock(mutex_);
        cv_.wait_for(lock, deadline, [&] { return state_ != State::connecting; });
        return state_;
    }

    // The next frame, or nullopt at the deadline or when closed with nothing left.
    std::optional<std::string> next(std::chrono::milliseconds deadline = 20s) {
        std::unique_lock<std::mutex> lock(mutex_);
        cv_.wait_for(lock, deadline, [&] { return !frames_.empty() || state_ == State::closed || state_ == State::failed; });
        if (frames_.empty()) return std::nullopt;
        std::string frame = std::move(frames_.front());
        frames_.pop_front();
        return frame;
    }

    // The next frame whose "type" is `type`, skipping others.
    std::optional<std::string> next_of_type(const std::string& type, std::chrono::milliseconds deadline = 20s) {
        const auto until = std::chrono::steady_clock::now() + deadline;
        while (true) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
            if (left.count() <= 0) return std::nullopt;
            auto frame = next(left);
            if (!frame) return std::nullopt;
            if (frame->rfind("{\"type\":\"" + type + "\"", 0) == 0) return frame;
        }
    }

    // Waits for the close; returns the close code the server sent (0 if none).
    int wait_closed(std::chrono::milliseconds deadline = 20s) {
        std::unique_lock<std::mutex> lock(mutex_);
        cv_.wait_for(lock, deadline, [&] { return state_ == State::closed || state_ == State::failed; });
        return state_ == State::closed || state_ == State::failed ? close_code_ : -1;
    }

    std::size_t frames_received() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return total_;
    }
    int http_status() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return http_status_;
    }
    State state() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return state_;
    }

    void send(const std::string& text);
    void send_binary(const std::string& bytes);
    void close(int code = 1000);

private:
    friend class TestClients;
    void set(State s, int close_code = 0, int http_status = 0) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (state_ == State::closed || state_ == State::failed) return;
        state_ = s;
        if (close_code) close_code_ = close_code;
        if (http_status) http_status_ = http_status;
        cv_.notify_all();
    }
    void push(std::string frame) {
        std::lock_guard<std::mutex> lock(mutex_);
        frames_.push_back(std::move(frame));
        ++total_;
        cv_.notify_all();
    }

    mutable std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<std::string> frames_;
    std::size_t total_ = 0;
    State state_ = State::connecting;
    int close_code_ = 0;
    int http_status_ = 0;
    websocketpp::connection_hdl hdl_;
    class TestClients* owner_ = nullptr;
};

class TestClients {
public:
    using client = websocketpp::client<websocketpp::config::asio_client>;

    TestClients() {
        client_.clear_access_channels(websocketpp::log::alevel::all);
        client_.clear_error_channels(websocketpp::log::elevel::all);
        client_.init_asio(&io_);
        client_.start_perpetual();
        client_.set_max_message_size(16 * 1024 * 1024);
        thread_ = std::thread([this] { io_.run(); });
    }

    ~TestClients() {
        client_.stop_perpetual();
        {
            std::lock_guard<std::mutex> lock(mutex_);
            for (auto& c : conns_) {
                websocketpp::lib::error_code ec;
                client_.close(c->hdl_, websocketpp::close::status::going_away, "", ec);
            }
        }
        // Give closes a moment to go out, then stop regardless.
        asio::post(io_, [this] { client_.stop(); });
        thread_.join();
    }

    // Opens a connection to ws://127.0.0.1:<port><path> with extra request
    // headers. Set up on the client's thread (websocketpp's resolver and
    // random generator are not for concurrent use); the caller waits for it.
    std::shared_ptr<ClientConn> open(std::uint16_t port, const std::string& path = "/ws",
                                     const std::map<std::string, std::string>& headers = {}) {
        auto conn = std::make_shared<ClientConn>();
        conn->owner_ = this;
        std::promise<void> ready;
        asio::post(io_, [&, conn] {
            setup(conn, "ws://127.0.0.1:" + std::to_string(port) + path, headers);
            ready.set_value();
        });
        ready.get_future().wait();
        return conn;
    }

    client& endpoint() { return client_; }

private:
    void setup(const std::shared_ptr<ClientConn>& conn, const std::string& uri,
               const std::map<std::string, std::string>& headers) {
        websocketpp::lib::error_code ec;
        auto con = client_.get_connection(uri, ec);
        if (ec) {
            conn->set(ClientConn::State::failed);
            return;
        }
        for (const auto& [name, value] : headers) con->replace_header(name, value);
        std::weak_ptr<ClientConn> weak = conn;
        con->set_open_handler([weak](websocketpp::connection_hdl) {
            if (auto c = weak.lock()) c->set(ClientConn::State::open);
        });
        con->set_fail_handler([this, weak](websocketpp::connection_hdl hdl) {
            auto c = weak.lock();
            if (!c) return;
            auto failed = client_.get_con_from_hdl(hdl);
            c->set(ClientConn::State::failed, failed->get_remote_close_code(), failed->get_response_code());
        });
        con->set_close_handler([this, weak](websocketpp::connection_hdl hdl) {
            auto c = weak.lock();
            if (!c) return;
            c->set(ClientConn::State::closed, client_.get_con_from_hdl(hdl)->get_remote_close_code());
        });
        con->set_message_handler([weak](websocketpp::connection_hdl, client::message_ptr msg) {
            if (auto c = weak.lock()) c->push(msg->get_payload());
        });
        {
            std::lock_guard<std::mutex> lock(conn->mutex_);
            conn->hdl_ = con->get_handle();
        }
        {
            std::lock_guard<std::mutex> lock(mutex_);
            conns_.push_back(conn);
        }
        client_.connect(con);
    }

    asio::io_context io_;
    client client_;
    std::thread thread_;
    std::mutex mutex_;
    std::vector<std::shared_ptr<ClientConn>> conns_;
};

inline void ClientConn::send(const std::string& text) {
    websocketpp::lib::error_code ec;
    owner_->endpoint().send(hdl_, text, websocketpp::frame::opcode::text, ec);
}
inline void ClientConn::send_binary(const std::string& bytes) {
    websocketpp::lib::error_code ec;
    owner_->endpoint().send(hdl_, bytes, websocketpp::frame::opcode::binary, ec);
}
inline void ClientConn::close(int code) {
    websocketpp::lib::error_code ec;
    owner_->endpoint().close(hdl_, static_cast<websocketpp::close::status::value>(code), "", ec);
}

}  // namespace wshub::test
