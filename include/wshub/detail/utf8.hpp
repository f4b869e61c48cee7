// wshub/detail/utf8.hpp: strict UTF-8 validation and encoding.
//
// The JSON scanner validates every string it reads with these functions, and
// the encoder uses them to make sure nothing it writes is malformed. The rules
// are those of the Unicode standard's table of well-formed byte sequences
// (Table 3-7), which is what browsers enforce on WebSocket text frames: no
// overlong forms, no UTF-16 surrogates (U+D800..U+DFFF), nothing above
// U+10FFFF, no truncated sequences and no stray continuation bytes.
//
// Thread safety: pure functions over their arguments; safe from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace wshub::detail {

// Length (1..4) of the well-formed UTF-8 sequence that starts at `p`, or 0 when
// the bytes in [p, end) do not start with one. `p` must be before `end`.
inline std::size_t utf8_sequence_length(const unsigned char* p, const unsigned char* end) noexcept {
    const unsigned char lead = *p;
    if (lead < 0x80) return 1;

    // The allowed range of the second byte depends on the lead byte: this is
    // where overlong forms (E0, F0), surrogates (ED) and code points above
    // U+10FFFF (F4) are cut off. Every later byte is a plain 80..BF.
    std::size_t length = 0;
    unsigned char second_min = 0x80;
    unsigned char second_max = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF) {
        length = 2;
    } else if (lead == 0xE0) {
        length = 3;
        second_min = 0xA0;
    } else if ((lead >= 0xE1 && lead <= 0xEC) || lead == 0xEE || lead == 0xEF) {
        length = 3;
    } else if (lead == 0xED) {
        length = 3;
        second_max = 0x9F;
    } else if (lead == 0xF0) {
        length = 4;
        second_min = 0x90;
    } else if (lead >= 0xF1 && lead <= 0xF3) {
        length = 4;
    } else if (lead == 0xF4) {
        length = 4;
        second_max = 0x8F;
    } else {
        return 0;  // 80..C1 (continuation or overlong 2-byte lead) and F5..FF
    }

    if (static_cast<std::size_t>(end - p) < length) return 0;
    if (p[1] < second_min || p[1] > second_max) return 0;
    for (std::size_t i = 2; i < length; ++i) {
        if (p[i] < 0x80 || p[i] > 0xBF) return 0;
    }
    return length;
}

// True when every byte of `text` belongs to a well-formed UTF-8 sequence.
inline bool is_valid_utf8(std::string_view text) noexcept {
    const auto* p = reinterpret_cast<const unsigned char*>(text.data());
    const auto* const end = p + text.size();
    while (p != end) {
        // Most text is ASCII: skip it eight bytes at a time.
        while (end - p >= 8) {
            std::uint64_t block;
            std::memcpy(&block, p, sizeof block);
            if (block & 0x8080808080808080ULL) break;
            p += 8;
        }
        if (p == end) break;
        const std::size_t length = utf8_sequence_length(p, end);
        if (length == 0) return false;
        p += length;
    }
    return true;
}

// Appends the UTF-8 form of `code_point`. The caller guarantees a Unicode
// scalar value (at most U+10FFFF and not a surrogate).
inline void append_utf8(std::string& out, std::uint32_t code_point) {
    if (code_point < 0x80) {
        out.push_back(static_cast<char>(code_point));
    } else if (code_point < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (code_point >> 6)));
        out.push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
    } else if (code_point < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (code_point >> 12)));
        out.push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (code_point >> 18)));
        out.push_back(static_cast<char>(0x80 | ((code_point >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
    }
}

// `text` with every byte that is not part of a well-formed sequence replaced
// by U+FFFD, so that it can be written into a frame a browser will accept.
// Used only on the rare path where a server-side string is not valid UTF-8.
inline std::string to_valid_utf8(std::string_view text) {
    std::string out;
    out.reserve(text.size() + 8);
    const auto* p = reinterpret_cast<const unsigned char*>(text.data());
    const auto* const end = p + text.size();
    while (p != end) {
        const std::size_t length = utf8_sequence_length(p, end);
        if (length == 0) {
            append_utf8(out, 0xFFFD);
            ++p;
        } else {
            out.append(reinterpret_cast<const char*>(p), length);
            p += length;
        }
    }
    return out;
}

}  // namespace wshub::detail
