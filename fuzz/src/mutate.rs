//! A deterministic byte mutator: no coverage feedback, only the usual
//! blind mutations (bit flips, inserts, deletes, splices, repeats) plus
//! values that break decoders (huge numbers, deep nesting, long strings,
//! invalid UTF-8, MessagePack length prefixes) and words taken from the
//! seed corpus (field names, enum values).

/// The rumor service's seedable SplitMix64 generator: one implementation
/// for both.
pub use vdm_rumor::domain::Rng as Prng;

/// True one time in `n`.
fn one_in(rng: &mut Prng, n: usize) -> bool {
    rng.index(n) == 0
}

/// Byte strings that break decoders more often than random bytes do.
const INTERESTING: &[&[u8]] = &[
    b"\xff",
    b"\x00",
    b"\x7f",
    b"\x80",
    b"\xc0\x80",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"-1",
    b"0",
    b"-0",
    b"1e999",
    b"-1e999",
    b"1e-999",
    b"NaN",
    b"Infinity",
    b"9223372036854775807",
    b"9223372036854775808",
    b"-9223372036854775809",
    b"18446744073709551616",
    b"4294967296",
    b"340282366920938463463374607431768211456",
    b"0.1e1",
    b"null",
    b"true",
    b"\"\"",
    b"\"\\u0000\"",
    b"\"\\ud800\"",
    b"\"\\udfff\\ud800\"",
    b"[]",
    b"{}",
    b"[[[[[[[[[[[[[[[[",
    b"{\"a\":{\"a\":{\"a\":{\"a\":",
    b"%00",
    b"%FF",
    b"%C3%28",
    b"%25",
    b"&&&",
    b"=&=",
    b"+",
    b"\r\n",
    // MessagePack: nil, bools, floats, huge lengths, ext types.
    b"\xc0",
    b"\xc2",
    b"\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00",
    b"\xcb\x7f\xf0\x00\x00\x00\x00\x00\x00",
    b"\xca\x7f\xc0\x00\x00",
    b"\xcf\xff\xff\xff\xff\xff\xff\xff\xff",
    b"\xd3\x80\x00\x00\x00\x00\x00\x00\x00",
    b"\xdb\xff\xff\xff\xff",
    b"\xdd\xff\xff\xff\xff",
    b"\xdf\xff\xff\xff\xff",
    b"\xc6\xff\xff\xff\xff",
    b"\xc9\xff\xff\xff\xff\x01",
    b"\xd4\xff\x00",
    b"\xc1",
    b"\x91\x91\x91\x91\x91\x91\x91\x91",
    b"\x81\xa1a\x81\xa1a\x81\xa1a",
];

/// Mutates `input` in place (1 to 4 stacked mutations); `pool` supplies
/// splice partners, `words` dictionary entries. Keeps `input` at most
/// `max_len` bytes.
pub fn mutate(input: &mut Vec<u8>, pool: &[Vec<u8>], words: &[Vec<u8>], max_len: usize, rng: &mut Prng) {
    let rounds = 1 + rng.index(4);
    for _ in 0..rounds {
        let len = input.len();
        match rng.index(14) {
            0 if len > 0 => {
                let at = rng.index(len);
                input[at] ^= 1 << rng.index(8);
            }
            1 if len > 0 => {
                let at = rng.index(len);
                input[at] = rng.next_u64() as u8;
            }
            2 => {
                let at = rng.index(len + 1);
                let n = 1 + rng.index(4);
                for _ in 0..n {
                    input.insert(at, rng.next_u64() as u8);
                }
            }
            3 if len > 0 => {
                let at = rng.index(len);
                let n = (1 + rng.index(8)).min(len - at);
                input.drain(at..at + n);
            }
            4 if !pool.is_empty() => {
                // Splice: a head of this input and a tail of another.
                let other = &pool[rng.index(pool.len())];
                let cut = rng.index(len + 1);
                let from = rng.index(other.len() + 1);
                input.truncate(cut);
                input.extend_from_slice(&other[from..]);
            }
            5 if len > 0 => {
                // Repeat a chunk (long strings, deep nesting, many fields).
                let at = rng.index(len);
                let n = (1 + rng.index(16)).min(len - at);
                let chunk = input[at..at + n].to_vec();
                let most = if one_in(rng, 8) { 2000 } else { 16 };
                let times = 1 + rng.index(most);
                let mut grown = Vec::with_capacity(len + n * times);
                grown.extend_from_slice(&input[..at]);
                for _ in 0..times {
                    grown.extend_from_slice(&chunk);
                }
                grown.extend_from_slice(&input[at..]);
                *input = grown;
            }
            6 | 7 => {
                let value = INTERESTING[rng.index(INTERESTING.len())];
                insert_or_overwrite(input, value, rng);
            }
            8 | 9 if !words.is_empty() => {
                let word = &words[rng.index(words.len())];
                insert_or_overwrite(input, word, rng);
            }
            10 if len > 0 => {
                // Arithmetic on a byte: nudges lengths and digits.
                let at = rng.index(len);
                let delta = 1 + rng.index(16) as u8;
                input[at] = if one_in(rng, 2) {
                    input[at].wrapping_add(delta)
                } else {
                    input[at].wrapping_sub(delta)
                };
            }
            11 if len > 1 => {
                // Swap two bytes (quotes, brackets).
                let (a, b) = (rng.index(len), rng.index(len));
                input.swap(a, b);
            }
            12 => {
                // Deep nesting at a random point.
                let at = rng.index(len + 1);
                let most = if one_in(rng, 4) { 5000 } else { 200 };
                let depth = 1 + rng.index(most);
                let open: &[u8] = match rng.index(4) {
                    0 => b"[",
                    1 => b"{\"a\":",
                    2 => b"\x91",
                    _ => b"\x81\xa1a",
                };
                let nested: Vec<u8> = open.iter().copied().cycle().take(open.len() * depth).collect();
                input.splice(at..at, nested);
            }
            13 if len > 0 => {
                // Truncate: unterminated strings, cut numbers.
                input.truncate(rng.index(len));
            }
            _ => {
                let at = rng.index(len + 1);
                input.insert(at, rng.next_u64() as u8);
            }
        }
    }
    input.truncate(max_len);
}

fn insert_or_overwrite(input: &mut Vec<u8>, value: &[u8], rng: &mut Prng) {
    let at = rng.index(input.len() + 1);
    if one_in(rng, 2) {
        input.splice(at..at, value.iter().copied());
    } else {
        let end = (at + value.len()).min(input.len());
        input.splice(at..end, value.iter().copied());
    }
}

/// Words of the seed corpus worth inserting: runs of 3 to 32 identifier
/// characters (field names, enum values, parameter names), deduplicated.
pub fn words_of(corpus: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut words = std::collections::BTreeSet::new();
    for input in corpus {
        for run in input.split(|b| !(b.is_ascii_alphanumeric() || *b == b'_')) {
            if (3..=32).contains(&run.len()) {
                words.insert(run.to_vec());
                let mut quoted = Vec::with_capacity(run.len() + 2);
                quoted.push(b'"');
                quoted.extend_from_slice(run);
                quoted.push(b'"');
                words.insert(quoted);
            }
        }
    }
    words.into_iter().collect()
}
