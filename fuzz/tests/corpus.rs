//! Every target over its seed corpus once, then a few hundred mutations of
//! it: cheap enough for every CI run, and each crash the fuzzer found stays
//! fixed (its input is in the corpus).

use vdm_fuzz::mutate::{Prng, mutate, words_of};
use vdm_fuzz::{TARGETS, fuzz_dir, load_corpus, quiet_panics, run_one};

#[test]
fn every_target_survives_its_corpus_and_some_mutations() {
    quiet_panics();
    let mut failures = Vec::new();
    for target in TARGETS {
        let seeds = load_corpus(&fuzz_dir().join("corpus").join(target.name));
        assert!(!seeds.is_empty(), "{} has no seed corpus", target.name);
        for (name, bytes) in &seeds {
            if let Err(panic) = run_one(target, bytes) {
                failures.push(format!("{}/{name}: {panic}", target.name));
            }
        }
        let pool: Vec<Vec<u8>> = seeds.into_iter().map(|(_, bytes)| bytes).collect();
        let words = words_of(&pool);
        let mut rng = Prng::new(9);
        for i in 0..300 {
            let mut input = pool[i % pool.len()].clone();
            mutate(&mut input, &pool, &words, 4096, &mut rng);
            if let Err(panic) = run_one(target, &input) {
                failures.push(format!("{} mutation {i} ({input:?}): {panic}", target.name));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_seeds_are_valid_inputs() {
    // The corpus is meant to start from valid requests: the JSON and
    // MessagePack bodies decode into some route type, and the local
    // transformer's seeds give texts.
    let ok = |target: &str, bytes: &[u8]| {
        let t = vdm_fuzz::target(target).unwrap();
        run_one(&t, bytes).unwrap()
    };
    for (name, bytes) in load_corpus(&fuzz_dir().join("corpus/body_msgpack")) {
        assert!(
            rmp_serde::from_slice::<serde_json::Value>(&bytes).is_ok(),
            "{name} is not MessagePack"
        );
        ok("body_msgpack", &bytes);
    }
    for (name, bytes) in load_corpus(&fuzz_dir().join("corpus/body_json")) {
        assert!(
            serde_json::from_slice::<serde_json::Value>(&bytes).is_ok(),
            "{name} is not JSON"
        );
        ok("body_json", &bytes);
    }
}
