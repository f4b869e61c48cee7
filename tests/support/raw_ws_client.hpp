// tests/support/raw_ws_client.hpp: a bare-socket WebSocket client that can
// misbehave on purpose: a tiny receive buffer, never reading, never answering
// pings, sending arbitrary bytes (a frame header and no payload). Blocking
// calls, for the test thread; read_frame() waits at most its deadline.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <system_error>

#include <poll.h>

#include <asio/connect.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read_until.hpp>
#include <asio/streambuf.hpp>
#include <asio/write.hpp>

namespace wshub::test {

class RawWsClient {
public:
    // Connects and completes the opening handshake; the receive buffer is set
    // before connecting so the kernel's window stays small.
    explicit RawWsClient(std::uint16_t port, int receive_buffer_bytes = 4096) : socket_(io_) {
        socket_.open(asio::ip::tcp::v4());
        socket_.set_option(asio::socket_base::receive_buffer_size(receive_buffer_bytes));
        socket_.connect({asio::ip::make_address("127.0.0.1"), port});
        const std::string request =
            "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        asio::write(socket_, asio::buffer(request));
        asio::streambuf response;
        asio::read_until(socket_, response, "\r\n\r\n");
        const std::string all(asio::buffers_begin(response.data()), asio::buffers_end(response.data()));
        const auto head_end = all.find("\r\n\r\n") + 4;
        upgraded_ = all.rfind("HTTP/1.1 101", 0) == 0;
        pending_ = all.substr(head_end);  // frames the server sent right after the handshake
    }

    bool upgraded() const noexcept { return upgraded_; }

    // Sends one masked text frame (clients must mask).
    void send_text(const std::string& text) { send_frame(0x81, text); }

    // Sends one masked ping (payload at most 125 bytes).
    void send_ping(const std::string& payload) { send_frame(0x89, payload); }

    // Sends these bytes as they are (a hand-made frame, or part of one).
    void send_raw(const std::string& bytes) { asio::write(socket_, asio::buffer(bytes)); }

    // Vanishes without a closing handshake: a plain FIN (end of file at the
    // server), or with `reset` a TCP RST (connection reset by peer).
    void vanish(bool reset) {
        std::error_code ec;
        if (reset) socket_.set_option(asio::socket_base::linger(true, 0), ec);
        socket_.close(ec);
    }

    struct Frame {
        int opcode = 0;  // 0x1 text, 0x2 binary, 0x8 close, 0x9 ping, 0xA pong
        std::string payload;
        // A close frame's status code (-1 when it has none).
        int close_code() const {
            if (opcode != 0x8 || payload.size() < 2) return -1;
            return (static_cast<unsigned char>(payload[0]) << 8) | static_cast<unsigned char>(payload[1]);
        }
    };

    // The next frame from the server (unmasked, as servers send them), or
    // nothing if the connection ends or `deadline` passes first.
    std::optional<Frame> read_frame(std::chrono::milliseconds deadline = std::chrono::seconds(20)) {
        const auto until = std::chrono::steady_clock::now() + deadline;
        while (true) {
            if (auto frame = take_frame()) return frame;
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
            if (left.count() <= 0) return std::nullopt;
            pollfd pfd{socket_.native_handle(), POLLIN, 0};
            if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) continue;  // timeout: checked above
            std::array<char, 4096> buffer{};
            std::error_code ec;
            const auto n = socket_.read_some(asio::buffer(buffer), ec);
            if (ec) return take_frame();
            pending_.append(buffer.data(), n);
        }
    }

private:
    void send_frame(unsigned char first_byte, const std::string& text) {
        std::string frame;
        frame.push_back(static_cast<char>(first_byte));
        const std::array<unsigned char, 4> mask{0x12, 0x34, 0x56, 0x78};
        if (text.size() < 126) {
            frame.push_back(static_cast<char>(0x80 | text.size()));
        } else {
            frame.push_back(static_cast<char>(0x80 | 126));
            frame.push_back(static_cast<char>((text.size() >> 8) & 0xFF));
            frame.push_back(static_cast<char>(text.size() & 0xFF));
        }
        for (unsigned char m : mask) frame.push_back(static_cast<char>(m));
        for (std::size_t i = 0; i < text.size(); ++i) frame.push_back(static_cast<char>(text[i] ^ mask[i % 4]));
        asio::write(socket_, asio::buffer(frame));
    }

    // One whole frame off the front of pending_, if it is all there.
    std::optional<Frame> take_frame() {
        if (pending_.size() < 2) return std::nullopt;
        const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(pending_[i]); };
        std::size_t header = 2;
        std::uint64_t length = byte(1) & 0x7F;
        if (length == 126) {
            header = 4;
            if (pending_.size() < header) return std::nullopt;
            length = (std::uint64_t{byte(2)} << 8) | byte(3);
        } else if (length == 127) {
            header = 10;
            if (pending_.size() < header) return std::nullopt;
            length = 0;
            for (std::size_t i = 2; i < 10; ++i) length = (length << 8) | byte(i);
        }
        if ((byte(1) & 0x80) != 0) header += 4;  // a masked frame (servers must not, but skip the key)
        if (pending_.size() < header + length) return std::nullopt;
        Frame frame;
        frame.opcode = byte(0) & 0x0F;
        frame.payload = pending_.substr(header, static_cast<std::size_t>(length));
        pending_.erase(0, header + static_cast<std::size_t>(length));
        return frame;
    }

    asio::io_context io_;
    asio::ip::tcp::socket socket_;
    bool upgraded_ = false;
    std::string pending_;  // received, not yet returned by read_frame()
};

}  // namespace wshub::test
