//! The fuzz targets on stable Rust, without libFuzzer: each body of
//! `lakeftpd_fuzz::TARGETS` runs for a bounded time on inputs mutated from
//! the seed corpus (`corpus/<target>/`) and on random bytes, from a seeded
//! PRNG (the seed is printed; the same seed and iteration count give the
//! same inputs). No coverage feedback: it finds shallow bugs quickly and
//! keeps the bodies building and running in CI; libFuzzer goes deeper.
//!
//!     cargo run --release --no-default-features --bin stable -- \
//!         [--seconds N] [--seed S] [--only NAME] [--corpus DIR]
//!     ... --bin stable -- --only NAME --replay HEX   (one input, again)
//!
//! Exits 1 on a panic or a failed property, printing the input in hex.

use std::panic;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Inputs kept for further mutation per target (beyond the seeds).
const POOL: usize = 256;
/// Largest input generated.
const MAX_INPUT: usize = 4096;

/// xorshift64*: small, seeded, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

/// Bytes that parsers treat specially; inserted whole by the mutator.
const TOKENS: &[&[u8]] = &[
    b" ",
    b"\r\n",
    b"\n",
    b"\r",
    b"\0",
    b"%",
    b"%25",
    b"%0A",
    b"=",
    b"#",
    b"[",
    b"]",
    b"{",
    b"}",
    b"/",
    b"..",
    b".",
    b"\\",
    b",",
    b"|",
    b"?",
    b":",
    b"-",
    b"0",
    b"255",
    b"256",
    b"65535",
    b"65536",
    b"PROXY ",
    b"TCP4 ",
    b"TCP6 ",
    b"UNKNOWN",
    b"HTTP/1.1",
    b"GET ",
    b"HEAD ",
    b"[user a]\n",
    b"{path}",
    b"{user}",
    b"{uuid}",
    b".lakeftpd-tmp-",
    b"\x0d\x0a\x0d\x0a\x00\x0d\x0a\x51\x55\x49\x54\x0a",
    b"\x21\x11",
    b"\x20\x00",
    b"\xff\xfe",
    b"\xf0\x9f\x98\x80",
];

fn mutate(rng: &mut Rng, input: &mut Vec<u8>, other: &[u8]) {
    for _ in 0..1 + rng.below(8) {
        let len = input.len();
        match rng.below(9) {
            0 if len > 0 => input[rng.below(len)] ^= 1 << rng.below(8),
            1 if len > 0 => input[rng.below(len)] = rng.byte(),
            2 => input.insert(rng.below(len + 1), rng.byte()),
            3 if len > 0 => {
                let at = rng.below(len);
                let n = 1 + rng.below((len - at).min(16));
                input.drain(at..at + n);
            }
            4 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                let at = rng.below(len + 1);
                input.splice(at..at, token.iter().copied());
            }
            5 if len > 0 => {
                // Duplicate a chunk somewhere else.
                let at = rng.below(len);
                let n = 1 + rng.below((len - at).min(64));
                let chunk = input[at..at + n].to_vec();
                let to = rng.below(len + 1);
                input.splice(to..to, chunk);
            }
            6 if len > 0 => input.truncate(rng.below(len)),
            7 if !other.is_empty() => {
                // Splice: our head, another input's tail.
                let at = rng.below(len + 1);
                let from = rng.below(other.len());
                input.truncate(at);
                input.extend_from_slice(&other[from..]);
            }
            8 if len > 0 => {
                // An interesting number in place of a byte.
                let n = [0u8, 1, 0x7f, 0x80, 0xff, b'9', b'0'][rng.below(7)];
                input[rng.below(len)] = n;
            }
            _ => input.push(rng.byte()),
        }
    }
    input.truncate(MAX_INPUT);
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn seeds(corpus: &Path, target: &str) -> Vec<Vec<u8>> {
    let mut found: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(corpus.join(target))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.path(), std::fs::read(e.path()).ok()?)))
        .collect();
    // Directory order is not stable; the PRNG's choices must be.
    found.sort();
    found.into_iter().map(|(_, data)| data).collect()
}

struct Options {
    seconds: u64,
    seed: u64,
    only: Option<String>,
    corpus: PathBuf,
    replay: Option<Vec<u8>>,
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        seconds: 20,
        seed: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
        only: None,
        corpus: Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus"),
        replay: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--seconds" => o.seconds = value()?.parse().map_err(|_| "bad --seconds")?,
            "--seed" => o.seed = value()?.parse().map_err(|_| "bad --seed")?,
            "--only" => o.only = Some(value()?),
            "--corpus" => o.corpus = PathBuf::from(value()?),
            "--replay" => o.replay = Some(unhex(&value()?).ok_or("bad --replay hex")?),
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    if o.replay.is_some() && o.only.is_none() {
        return Err("--replay needs --only NAME".into());
    }
    // xorshift has one fixed point.
    o.seed = o.seed.max(1);
    Ok(o)
}

/// Runs one target until `budget` is spent or an input fails; returns the
/// iteration count and the failing input.
fn run(
    body: fn(&[u8]),
    seeds: &[Vec<u8>],
    rng: &mut Rng,
    budget: Duration,
) -> (u64, Option<Vec<u8>>) {
    let start = Instant::now();
    let mut pool: Vec<Vec<u8>> = Vec::new();
    let mut iterations = 0u64;
    // The seeds themselves first.
    let mut queue: Vec<Vec<u8>> = seeds.to_vec();
    loop {
        let input = match queue.pop() {
            Some(seed) => seed,
            None => {
                let pick = |rng: &mut Rng| -> Vec<u8> {
                    let from_pool = !pool.is_empty() && rng.below(3) == 0;
                    if from_pool {
                        pool[rng.below(pool.len())].clone()
                    } else if !seeds.is_empty() && rng.below(8) != 0 {
                        seeds[rng.below(seeds.len())].clone()
                    } else {
                        let n = rng.below(256);
                        (0..n).map(|_| rng.byte()).collect()
                    }
                };
                let mut input = pick(rng);
                let other = pick(rng);
                mutate(rng, &mut input, &other);
                input
            }
        };
        iterations += 1;
        if panic::catch_unwind(|| body(&input)).is_err() {
            return (iterations, Some(input));
        }
        // Without coverage, keep a random sample to wander further from the seeds.
        if pool.len() < POOL {
            pool.push(input);
        } else if rng.below(4) == 0 {
            let at = rng.below(POOL);
            pool[at] = input;
        }
        if iterations.is_multiple_of(256) && start.elapsed() >= budget {
            return (iterations, None);
        }
    }
}

fn main() -> ExitCode {
    let o = match options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("stable: {e}");
            return ExitCode::from(2);
        }
    };
    println!("stable fuzz: seed {} ({}s per target)", o.seed, o.seconds);
    let mut failed = 0;
    for (i, (name, body)) in lakeftpd_fuzz::TARGETS.iter().enumerate() {
        if o.only.as_deref().is_some_and(|only| only != *name) {
            continue;
        }
        if let Some(input) = &o.replay {
            body(input);
            println!("{name}: the input passes");
            return ExitCode::SUCCESS;
        }
        let seeds = seeds(&o.corpus, name);
        // One stream per target, so --only reproduces the full run's inputs.
        let mut rng = Rng(o.seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let (iterations, found) = run(*body, &seeds, &mut rng, Duration::from_secs(o.seconds));
        match found {
            None => println!(
                "{name}: {iterations} iterations, {} seeds, nothing found",
                seeds.len()
            ),
            Some(input) => {
                failed += 1;
                println!(
                    "{name}: FAILED after {iterations} iterations; input ({} bytes, hex): {}",
                    input.len(),
                    hex(&input)
                );
                println!("{name}: as text: {:?}", String::from_utf8_lossy(&input));
            }
        }
    }
    if failed > 0 {
        println!("stable fuzz: {failed} target(s) failed (seed {})", o.seed);
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
