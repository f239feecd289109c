//! Real clients against the real binary, in active and passive mode, with
//! content checked byte for byte: curl, lftp, inetutils ftp, Python ftplib.

mod common;

use common::{names, pattern, run, Scratch, Server, PASSWORD};
use std::fs;
use std::path::Path;

fn write(path: &Path, bytes: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

#[test]
fn curl_passive_upload_download_list() {
    let server = Server::start("", &[("dev", "full")]);
    let local = Scratch::new("curl-pasv");
    let data = pattern(200_000, 1);
    write(&local.0.join("up.bin"), &data);
    let url = server.url("dev");
    let (ok, _, err) = run(
        "curl",
        &[
            "-sS",
            "-T",
            local.0.join("up.bin").to_str().unwrap(),
            &format!("{url}/up.bin"),
        ],
        None,
        None,
    );
    assert!(ok, "{err}");
    assert_eq!(fs::read(server.home("dev").join("up.bin")).unwrap(), data);
    let down = local.0.join("down.bin");
    let (ok, _, err) = run(
        "curl",
        &[
            "-sS",
            "-o",
            down.to_str().unwrap(),
            &format!("{url}/up.bin"),
        ],
        None,
        None,
    );
    assert!(ok, "{err}");
    assert_eq!(fs::read(&down).unwrap(), data);
    let (ok, listing, _) = run("curl", &["-sS", &format!("{url}/")], None, None);
    assert!(ok);
    // `ls -l` form: permissions, links, owner, group, size, date, name.
    let line = listing
        .lines()
        .find(|l| l.ends_with(" up.bin"))
        .expect("listed");
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert!(fields[0].starts_with("-rw"), "{line}");
    assert_eq!(fields[4], "200000", "{line}");
}

#[test]
fn curl_active_upload_download_and_create_dirs() {
    let server = Server::start("", &[("dev", "full")]);
    let local = Scratch::new("curl-port");
    let data = pattern(70_000, 2);
    write(&local.0.join("f.csv"), &data);
    let url = server.url("dev");
    let file = local.0.join("f.csv");
    let (ok, _, err) = run(
        "curl",
        &[
            "-sS",
            "-P",
            "127.0.0.1",
            "--ftp-create-dirs",
            "-T",
            file.to_str().unwrap(),
            &format!("{url}/a/b%20c/f.csv"),
        ],
        None,
        None,
    );
    assert!(ok, "{err}");
    assert_eq!(
        fs::read(server.home("dev").join("a/b c/f.csv")).unwrap(),
        data
    );
    let down = local.0.join("back.csv");
    let (ok, _, err) = run(
        "curl",
        &[
            "-sS",
            "-P",
            "127.0.0.1",
            "-o",
            down.to_str().unwrap(),
            &format!("{url}/a/b%20c/f.csv"),
        ],
        None,
        None,
    );
    assert!(ok, "{err}");
    assert_eq!(fs::read(&down).unwrap(), data);
    // EPRT path too (curl tries EPRT first, --disable-eprt forces PORT).
    let (ok, _, err) = run(
        "curl",
        &[
            "-sS",
            "-P",
            "127.0.0.1",
            "--disable-eprt",
            "-o",
            down.to_str().unwrap(),
            &format!("{url}/a/b%20c/f.csv"),
        ],
        None,
        None,
    );
    assert!(ok, "{err}");
    assert_eq!(fs::read(&down).unwrap(), data);
    server.wait_log("verb=RETR", std::time::Duration::from_secs(5));
}

#[test]
fn curl_active_from_source_port_20() {
    // The configured source port is what the device sees (we run as root).
    let server = Server::start("active_source_port = 20", &[("dev", "full")]);
    let local = Scratch::new("curl-20");
    write(&local.0.join("x"), b"twenty");
    let url = server.url("dev");
    let (ok, _, err) = run(
        "curl",
        &[
            "-v",
            "-sS",
            "-P",
            "127.0.0.1",
            "-T",
            local.0.join("x").to_str().unwrap(),
            &format!("{url}/x"),
        ],
        None,
        None,
    );
    assert!(ok, "{err}");
    assert!(
        err.contains("Connection made to server") || err.contains("Connect data stream actively"),
        "{err}"
    );
    assert_eq!(fs::read(server.home("dev").join("x")).unwrap(), b"twenty");
    // Two at once share port 20 (SO_REUSEADDR, different destinations).
    let threads: Vec<_> = (0..2)
        .map(|i| {
            let url = url.clone();
            let path = local.0.join("x");
            std::thread::spawn(move || {
                run(
                    "curl",
                    &[
                        "-sS",
                        "-P",
                        "127.0.0.1",
                        "-T",
                        path.to_str().unwrap(),
                        &format!("{url}/p{i}"),
                    ],
                    None,
                    None,
                )
                .0
            })
        })
        .collect();
    for t in threads {
        assert!(t.join().unwrap());
    }
}

fn lftp(server: &Server, user: &str, script: &str, cwd: &Path) -> (bool, String, String) {
    let open = format!("set ftp:ssl-allow no; set net:max-retries 1; set net:timeout 10; open -u {user},{PASSWORD} -p {} 127.0.0.1; {script}; bye", server.port());
    run("lftp", &["-c", &open], None, Some(cwd))
}

#[test]
fn lftp_passive_and_active_put_get() {
    let server = Server::start("", &[("dev", "full")]);
    let local = Scratch::new("lftp");
    let data = pattern(123_457, 3);
    write(&local.0.join("in.bin"), &data);
    for (mode, name) in [("on", "pasv.bin"), ("off", "port.bin")] {
        let script =
            format!("set ftp:passive-mode {mode}; put in.bin -o {name}; get {name} -o out-{name}");
        let (ok, out, err) = lftp(&server, "dev", &script, &local.0);
        assert!(ok, "mode {mode}: {out}{err}");
        assert_eq!(
            fs::read(server.home("dev").join(name)).unwrap(),
            data,
            "mode {mode}"
        );
        assert_eq!(
            fs::read(local.0.join(format!("out-{name}"))).unwrap(),
            data,
            "mode {mode}"
        );
    }
}

#[test]
fn lftp_mirror_reverse_of_a_tree_with_spaces_and_utf8() {
    let server = Server::start("", &[("dev", "full")]);
    let local = Scratch::new("mirror");
    let tree = local.0.join("tree");
    let files = [
        ("metrics 2026/11/device A.csv", 10_000),
        ("metrics 2026/11/データ.csv", 5_000),
        ("metrics 2026/empty.txt", 0),
        ("ログ/über résumé.log", 65_537),
        ("top.bin", 300_000),
    ];
    for (i, (path, len)) in files.iter().enumerate() {
        write(&tree.join(path), &pattern(*len, i as u64 + 10));
    }
    let (ok, out, err) = lftp(&server, "dev", "mirror -R tree uploaded", &local.0);
    assert!(ok, "{out}{err}");
    for (i, (path, len)) in files.iter().enumerate() {
        let got = fs::read(server.home("dev").join("uploaded").join(path))
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(got, pattern(*len, i as u64 + 10), "{path}");
    }
    // Mirror back with active mode and compare the whole tree.
    let (ok, out, err) = lftp(
        &server,
        "dev",
        "set ftp:passive-mode off; mirror uploaded back",
        &local.0,
    );
    assert!(ok, "{out}{err}");
    for (path, _) in files {
        assert_eq!(
            fs::read(tree.join(path)).unwrap(),
            fs::read(local.0.join("back").join(path)).unwrap(),
            "{path}"
        );
    }
}

#[test]
fn inetutils_ftp_active_put_get_ls_mkdir_delete() {
    let server = Server::start("", &[("dev", "full")]);
    let local = Scratch::new("inetutils");
    let data = pattern(50_000, 4);
    write(&local.0.join("local.bin"), &data);
    let script = format!(
        "user dev {PASSWORD}\nbinary\nmkdir newdir\nput local.bin newdir/remote.bin\nget newdir/remote.bin fetched.bin\nls newdir\ndelete newdir/remote.bin\nls newdir\nquit\n"
    );
    let (_, out, err) = run(
        "ftp",
        &["-n", "-v", "127.0.0.1", &server.port().to_string()],
        Some(&script),
        Some(&local.0),
    );
    assert!(out.contains("257"), "mkdir: {out}{err}");
    assert!(
        out.contains("200 PORT command successful"),
        "inetutils ftp is active by default: {out}"
    );
    assert_eq!(
        fs::read(local.0.join("fetched.bin")).unwrap(),
        data,
        "{out}{err}"
    );
    assert!(out.contains("remote.bin"), "ls shows the file: {out}");
    assert!(out.contains("250 file deleted"), "{out}");
    assert!(
        names(&server.home("dev").join("newdir")).is_empty(),
        "deleted"
    );
}

#[test]
fn python_ftplib_active_and_passive() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/ftplib_check.py");
    for mode in ["active", "passive"] {
        let server = Server::start("", &[("dev", "full")]);
        let home = server.home("dev");
        let (ok, out, err) = run(
            "python3",
            &[
                script,
                "127.0.0.1",
                &server.port().to_string(),
                "dev",
                PASSWORD,
                mode,
                home.to_str().unwrap(),
            ],
            None,
            None,
        );
        assert!(ok, "{mode}:\n{out}{err}");
        assert!(out.contains("all ok"), "{out}");
    }
}
