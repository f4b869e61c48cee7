// bench/loadgen/ws_connection.hpp: one client WebSocket connection, lean enough
// that thousands per thread never make the load generator the bottleneck.
//
// A plain Asio TCP socket: the opening handshake is one fixed request; frames
// are parsed in place in a per-connection buffer (grown only for a frame that
// does not fit), and each text frame's payload is handed to the owner as a
// string_view into that buffer. Writes are double-buffered: frames appended
// while a write is in flight go out with the next one, so a connection has at
// most one write outstanding and steady-state sending allocates nothing.
// Client frames must be masked; the owner appends frames it masked itself
// (append_raw) or lets this class mask (append_text). Pings are answered.
//
// Thread safety: none; every member runs on the io_context that owns the socket.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <asio/connect.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>

namespace loadgen {

class WsConnection {
public:
    using TextHandler = std::function<void(std::string_view)>;
    using EventHandler = std::function<void(std::error_code)>;

    WsConnection(asio::io_context& io, std::uint32_t mask_key) : socket_(io), mask_key_(mask_key) {
        in_.resize(8192);
        out_.reserve(4096);
        pending_.reserve(4096);
    }

    // on_open(ec) once the handshake completed (or failed); on_text for each
    // text frame; on_close(ec) once, when the connection ends after opening.
    void start(const asio::ip::tcp::endpoint& server, const asio::ip::address& source, std::string host_header,
               std::string path, EventHandler on_open, TextHandler on_text, EventHandler on_close) {
        on_open_ = std::move(on_open);
        on_text_ = std::move(on_text);
        on_close_ = std::move(on_close);
        std::error_code ec;
        socket_.open(server.protocol(), ec);
        if (!ec && !source.is_unspecified()) {
            // Pick the source port at connect time, by the whole 4-tuple, not
            // at bind time by (address, port) alone: otherwise ports in
            // TIME_WAIT from earlier runs block bind() and each connect scans
            // for a free port, which depresses the measured connect rates.
            const int one = 1;
            ::setsockopt(socket_.native_handle(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
            socket_.bind({source, 0}, ec);
        }
        if (!ec && receive_buffer_ > 0) socket_.set_option(asio::socket_base::receive_buffer_size(receive_buffer_), ec);
        if (ec) return fail_open(ec);
        socket_.set_option(asio::ip::tcp::no_delay(true), ec);
        request_ = "GET " + path + " HTTP/1.1\r\nHost: " + host_header +
                   "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        socket_.async_connect(server, [this](std::error_code e) {
            if (e) return fail_open(e);
            asio::async_write(socket_, asio::buffer(request_), [this](std::error_code w, std::size_t) {
                if (w) return fail_open(w);
                read_handshake();
            });
        });
    }

    bool open() const noexcept { return open_; }

    // SO_RCVBUF for the socket, set before it connects (a small one makes a
    // client that stops reading push back on the server sooner). 0: the kernel's.
    void set_receive_buffer(int bytes) { receive_buffer_ = bytes; }

    // Reads nothing more after the frames already buffered: a client that
    // stopped reading, as far as the server can tell (it still answers nothing).
    void stop_reading() { reading_stopped_ = true; }

    // Appends one text frame, masked here.
    void append_text(std::string_view text) {
        std::vector<char>& buf = writing_ ? pending_ : out_;
        append_header(buf, 0x81, text.size());
        const std::size_t at = buf.size();
        buf.insert(buf.end(), text.begin(), text.end());
        mask(buf.data() + at, text.size(), 0);
    }

    // Appends bytes that are already one or more complete, masked frames.
    void append_raw(const char* data, std::size_t size) {
        std::vector<char>& buf = writing_ ? pending_ : out_;
        buf.insert(buf.end(), data, data + size);
    }

    // The buffer that append_* writes to now (for callers that build frames in place).
    std::vector<char>& append_buffer() { return writing_ ? pending_ : out_; }

    // Starts a write of what was appended, unless one is in flight (then it follows it).
    void flush() {
        if (writing_ || out_.empty() || !open_) return;
        writing_ = true;
        asio::async_write(socket_, asio::buffer(out_), [this](std::error_code ec, std::size_t) {
            writing_ = false;
            out_.clear();
            if (ec) return close(ec);
            out_.swap(pending_);
            flush();
        });
    }

    // Bytes appended and not yet written (a publisher that the server does not read from grows this).
    std::size_t backlog() const noexcept { return out_.size() + pending_.size(); }

    std::uint32_t mask_key() const noexcept { return mask_key_; }

    void close(std::error_code why = {}) {
        if (closed_) return;
        closed_ = true;
        std::error_code ignored;
        socket_.close(ignored);
        if (open_ && on_close_) on_close_(why);
        open_ = false;
    }

    // XORs `size` bytes at `data` with the mask key, as if they began at
    // payload offset `offset`.
    void mask(char* data, std::size_t size, std::size_t offset) const {
        const unsigned char key[4] = {static_cast<unsigned char>(mask_key_ >> 24),
                                      static_cast<unsigned char>(mask_key_ >> 16),
                                      static_cast<unsigned char>(mask_key_ >> 8),
                                      static_cast<unsigned char>(mask_key_)};
        for (std::size_t i = 0; i < size; ++i) data[i] = static_cast<char>(data[i] ^ key[(offset + i) & 3]);
    }

    // Appends a client frame header (FIN, opcode, MASK bit, length, key) for `size` payload bytes.
    void append_header(std::vector<char>& buf, unsigned char first, std::size_t size) const {
        buf.push_back(static_cast<char>(first));
        if (size < 126) {
            buf.push_back(static_cast<char>(0x80 | size));
        } else if (size <= 0xFFFF) {
            buf.push_back(static_cast<char>(0x80 | 126));
            buf.push_back(static_cast<char>(size >> 8));
            buf.push_back(static_cast<char>(size));
        } else {
            buf.push_back(static_cast<char>(0x80 | 127));
            for (int shift = 56; shift >= 0; shift -= 8) buf.push_back(static_cast<char>(size >> shift));
        }
        for (int shift = 24; shift >= 0; shift -= 8) buf.push_back(static_cast<char>(mask_key_ >> shift));
    }

private:
    void fail_open(std::error_code ec) {
        closed_ = true;
        std::error_code ignored;
        socket_.close(ignored);
        if (on_open_) on_open_(ec ? ec : std::make_error_code(std::errc::protocol_error));
    }

    void read_handshake() {
        socket_.async_read_some(asio::buffer(in_.data() + filled_, in_.size() - filled_),
                                [this](std::error_code ec, std::size_t n) {
                                    if (ec) return fail_open(ec);
                                    filled_ += n;
                                    const std::string_view got(in_.data(), filled_);
                                    const auto end = got.find("\r\n\r\n");
                                    if (end == std::string_view::npos) {
                                        if (filled_ == in_.size()) return fail_open({});
                                        return read_handshake();
                                    }
                                    if (got.compare(0, 12, "HTTP/1.1 101") != 0) return fail_open({});
                                    consume(end + 4);
                                    open_ = true;
                                    if (on_open_) on_open_({});
                                    if (!closed_) parse_and_read();
                                });
    }

    void consume(std::size_t n) {
        std::memmove(in_.data(), in_.data() + n, filled_ - n);
        filled_ -= n;
    }

    // Parses every complete frame in the buffer, then reads more.
    void parse_and_read() {
        std::size_t at = 0;
        while (!closed_) {
            const std::size_t avail = filled_ - at;
            if (avail < 2) break;
            const auto* p = reinterpret_cast<const unsigned char*>(in_.data() + at);
            const unsigned opcode = p[0] & 0x0F;
            std::uint64_t length = p[1] & 0x7F;
            std::size_t header = 2;
            if (length == 126) {
                if (avail < 4) break;
                length = (std::uint64_t{p[2]} << 8) | p[3];
                header = 4;
            } else if (length == 127) {
                if (avail < 10) break;
                length = 0;
                for (int i = 0; i < 8; ++i) length = (length << 8) | p[2 + i];
                header = 10;
            }
            if (avail < header + length) {
                if (header + length > in_.size()) in_.resize(static_cast<std::size_t>(header + length) + 4096);
                break;
            }
            const std::string_view payload(in_.data() + at + header, static_cast<std::size_t>(length));
            if (opcode == 0x1) {
                if (on_text_) on_text_(payload);
            } else if (opcode == 0x9) {
                std::vector<char>& buf = append_buffer();
                append_header(buf, 0x8A, payload.size());
                const std::size_t start = buf.size();
                buf.insert(buf.end(), payload.begin(), payload.end());
                mask(buf.data() + start, payload.size(), 0);
                flush();
            } else if (opcode == 0x8) {
                close(std::make_error_code(std::errc::connection_reset));
                return;
            }
            at += header + static_cast<std::size_t>(length);
        }
        if (closed_) return;
        if (at > 0) consume(at);
        if (reading_stopped_) return;
        socket_.async_read_some(asio::buffer(in_.data() + filled_, in_.size() - filled_),
                                [this](std::error_code ec, std::size_t n) {
                                    if (ec) return close(ec);
                                    filled_ += n;
                                    parse_and_read();
                                });
    }

    asio::ip::tcp::socket socket_;
    std::uint32_t mask_key_;
    std::string request_;
    std::vector<char> in_;
    std::size_t filled_ = 0;
    std::vector<char> out_, pending_;
    bool writing_ = false;
    bool reading_stopped_ = false;
    int receive_buffer_ = 0;
    bool open_ = false;
    bool closed_ = false;
    EventHandler on_open_;
    TextHandler on_text_;
    EventHandler on_close_;
};

}  // namespace loadgen
