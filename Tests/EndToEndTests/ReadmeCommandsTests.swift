import Foundation
import XCTest

/// Every command example in README.md and in `docs/`, run as written (with shortened flags) in one
/// scratch directory, page by page in the order of `pages` (README.md first), so that later
/// examples find the runs made by earlier ones (`docs/outputs.md` encodes the README's
/// `runs/sparse`, say). Every `docs/*.md` must be listed in `pages`, so a new page cannot go
/// untested. Failure messages name the page and line (`docs/data.md:12: …`).
///
/// Examples are taken from ```sh blocks (one command per line; an indented line or a trailing
/// `\` continues the previous one; `# …` comments are dropped), from ```python blocks (each block
/// one script) and from inline code spans that start with `aetrain `, `mpirun `,
/// `.build/release/aetrain ` or `python3 -c `. Other fences (```bash for cluster and Slurm
/// commands, ```text for output) are not read. Each example is exactly one of:
/// - **skipped**: it matches a pattern of `skips`, which says why this machine cannot run it.
///   A pattern that matches nothing on any page fails the test, so the list stays small and
///   current;
/// - **a synopsis**: it has `[…]`, `|` alternatives, `...` or a placeholder in capitals
///   (`RUN`, `OUT`, `DIR`). It is not run; every `--flag` in it must be listed by
///   `aetrain help <command>`;
/// - **a mention**: a span that is only `aetrain <command>` names the command, which must exist;
///   a span starting with `mpirun` that runs no aetrain (`mpirun -n 2`) names mpirun;
/// - **run**: `aetrain` and `.build/release/aetrain` become the built binary, `mpirun` gets
///   `--oversubscribe`, and the rewrites below shorten it. It must exit 0.
/// Any other command (an unknown program in a ```sh block) fails the test.
///
/// **Measurement logs** (`docs/benchmarks/*.md`, read after the pages, sorted by name) hold
/// full-length timing runs with the commands that produced them. Nothing in them is run: every
/// shell example that calls aetrain is checked as a synopsis (its flags against `aetrain help`),
/// a span `mpirun …` without aetrain is a mention, any other command must name an existing script
/// under `deploy/`, and a ```python block there fails the test.
///
/// Rewrites (`shortened`):
///
/// | the page has | the test runs | why |
/// | --- | --- | --- |
/// | `train` (or no command), any `--iterations` | `--iterations 30` (replaced or added) | 10,001 steps take 13–40 s |
/// | `bench`, any `--steps`/`--warmup` | `--steps 20 --warmup 2` (replaced or added) | the defaults time 300 + 30 steps per configuration |
/// | `~/scikit_learn_data/lfw_home/lfw_funneled` | `lfw` | scikit-learn's download is not here; the test's small LFW tree stands in |
/// | `synthetic:13233,37,28` | `synthetic:300,37,28` | the full-size data is only slower |
/// | `Sources/AETrainCore/Data/Resources/` (Python) | that folder's absolute path | the pages run Python from the repository's root |
///
/// Files the pages assume the user has, made in the scratch directory first: `faces.npy`
/// (the embedded faces, 100×25×25 float32) and `lfw/` (an LFW-layout tree of 12 people × 10
/// JPEGs, made with Pillow as in `LFWTests`).
///
/// The Python example that encodes data with a run's outputs (the ```python block reading
/// `mean.npy` and `config.json`) is run with a check appended: its codes of the first 25
/// examples must equal the run's `activations.npy` to 1e-4.
final class ReadmeCommandsTests: XCTestCase {
    /// Commands this machine cannot run, by substring, with the reason.
    static let skips: [(pattern: String, reason: String)] = [
        ("bash deploy/test.sh", "runs the whole test suite, this test included"),
        ("bash deploy/quickstart.sh", "installs system packages and builds in the source tree, which `swift test` holds locked; "
            + "the commands it runs after the build are listed in the README and run here"),
        ("swift build", "the build directory is locked by the `swift test` running this test, and the binary under test is its product"),
        ("pip install", "installs scikit-learn for its LFW download, which needs the internet"),
        ("fetch_lfw_people", "downloads LFW (about 230 MB) from the internet"),
        ("--hostfile", "needs a cluster of hosts named in a hostfile"),
        ("tensorboard --logdir", "starts TensorBoard's web server, which runs until stopped (TensorBoardTests reads the event files with its reader)"),
    ]

    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let resources = repository.appendingPathComponent("Sources/AETrainCore/Data/Resources")
    static let subcommands: Set<String> = ["train", "pca", "prepare-lfw", "compare", "report", "bench", "encode", "export", "help"]
    /// The pages whose commands run, in this order: the README makes `runs/dense` and
    /// `runs/sparse`, which the pages after it read.
    static let pages = ["README.md", "docs/data.md", "docs/models.md", "docs/outputs.md", "docs/distributed.md",
                        "docs/fault-tolerance.md", "docs/clusters.md", "docs/performance.md", "docs/trace.md",
                        "docs/scaling.md", "docs/tests.md"]
    /// The folder of dated measurement logs, whose commands are checked but not run.
    static let logs = "docs/benchmarks"

    struct Example {
        enum Kind { case shell, python }
        var kind: Kind
        var text: String
        /// 1-based line in its page where the example starts.
        var line: Int
    }

    var scratch: URL!

    override func tearDownWithError() throws {
        if let scratch { try? FileManager.default.removeItem(at: scratch) }
    }

    /// The scratch directory with the files the pages assume: `faces.npy` and `lfw/`.
    func makeScratch() throws {
        scratch = try Harness.temporaryDirectory("readme")
        try FileManager.default.copyItem(at: Self.resources.appendingPathComponent("lfw_faces_25x25.npy"),
                                         to: scratch.appendingPathComponent("faces.npy"))
        // 12 people × 10 images of 250×250 RGB: smooth patterns and noise, enough for a batch of 100.
        _ = try Harness.python("""
            import numpy as np, os
            from PIL import Image
            rng = np.random.default_rng(0)
            y, x = np.mgrid[0:250, 0:250]
            for p in range(12):
                person = f"Person_{chr(65 + p)}"
                os.makedirs(f"\(scratch.path)/lfw/{person}", exist_ok=True)
                for k in range(1, 11):
                    img = np.stack([128 + 100 * np.sin(x / (10 + 5 * c + p) + rng.uniform(0, 6)) * np.cos(y / (13 + 3 * c))
                                    + rng.normal(0, 10, (250, 250)) for c in range(3)], -1)
                    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(f"\(scratch.path)/lfw/{person}/{person}_{k:04d}.jpg")
            """)
    }

    /// The `.md` files directly in `folder` (relative to the repository), sorted by name.
    static func markdownFiles(in folder: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: repository.appendingPathComponent(folder).path)
            .filter { $0.hasSuffix(".md") }.sorted().map { "\(folder)/\($0)" }
    }

    static func read(_ page: String) throws -> String {
        try String(contentsOf: repository.appendingPathComponent(page), encoding: .utf8)
    }

    func testEveryReadmeCommand() throws {
        let unlisted = Set(try Self.markdownFiles(in: "docs")).subtracting(Self.pages)
        XCTAssertTrue(unlisted.isEmpty, "pages missing from ReadmeCommandsTests.pages: \(unlisted.sorted())")
        try makeScratch()
        var examples: [(page: String, example: Example)] = []
        for page in Self.pages {
            examples += Self.examples(in: try Self.read(page)).map { (page, $0) }
        }
        XCTAssertGreaterThan(examples.count, 20, "too few examples found: is the parser broken?")
        var skipUses = [Int](repeating: 0, count: Self.skips.count)
        var ran = 0, synopses = 0, mentions = 0, checkedEncoding = false
        for (page, example) in examples {
            let at = "\(page):\(example.line): \(example.text)"
            if example.kind == .python {
                var script = Self.rewritePython(example.text)
                if script.contains("\"mean\""), script.contains("config.json") {
                    script += """

                        reference = np.load(f"{run}/activations.npy")
                        worst = float(np.abs(z[:len(reference)] - reference).max())
                        assert worst < 1e-4, f"codes differ from activations.npy by {worst}"
                        print("largest difference from activations.npy:", worst)
                        """
                    checkedEncoding = true
                }
                print("running the Python example at \(page):\(example.line)")
                let run = try Harness.run("/usr/bin/env", ["python3", "-c", script], directory: scratch)
                check(run, at)
                print(run.stdout, terminator: "")
                ran += 1
                continue
            }
            if let k = Self.skips.firstIndex(where: { example.text.contains($0.pattern) }) {
                skipUses[k] += 1
                print("skipped (\(Self.skips[k].reason)): \(at)")
                continue
            }
            let words = Self.words(example.text)
            if words.first == "python3", words.count == 3, words[1] == "-c" {
                try check(Harness.run("/usr/bin/env", ["python3", "-c", Self.rewritePython(words[2])], directory: scratch), at)
                ran += 1
                continue
            }
            let program = words.firstIndex { $0 == "aetrain" || $0 == ".build/release/aetrain" }
            if Self.isSynopsis(example.text, words: words) {
                guard let program else { XCTFail("a synopsis that calls no aetrain: \(at)"); continue }
                try checkFlags(Array(words[(program + 1)...]), at)
                synopses += 1
                continue
            }
            if words.first == "mpirun", program == nil { mentions += 1; continue }
            if words.count == 2, program == 0, Self.subcommands.contains(words[1]) {
                let r = try Harness.aetrain(["help", words[1]])
                XCTAssertEqual(r.status, 0, "\(at): no such command\n\(r.stderr)")
                mentions += 1
                continue
            }
            guard let program, program == 0 || words.first == "mpirun" else {
                XCTFail("a command that is neither run nor on the skip list: \(at)")
                continue
            }
            let arguments = Self.shortened(Array(words[(program + 1)...]))
            let run: Run
            if program == 0 {
                print("running \(at)\n  as aetrain \(arguments.joined(separator: " "))")
                run = try Harness.run(Harness.aetrain, arguments, directory: scratch)
            } else {
                let launcher = Array(words[1..<program]) + ["--oversubscribe", Harness.aetrain] + arguments
                print("running \(at)\n  as mpirun \(launcher.joined(separator: " "))")
                run = try Harness.run("/usr/bin/mpirun", launcher, directory: scratch)
            }
            check(run, at)
            ran += 1
        }
        for (k, uses) in skipUses.enumerated() where uses == 0 {
            XCTFail("skip pattern \(Self.skips[k].pattern) matches no command of the README or docs/: remove it")
        }
        XCTAssertTrue(checkedEncoding, "no ```python example reads mean.npy and config.json: the encoding snippet is missing")
        print("README and docs/: \(ran) commands run, \(synopses) synopses checked, \(mentions) mentions, "
              + "\(skipUses.reduce(0, +)) skipped")
    }

    /// The measurement logs' commands: not run (they are full-length timing runs), but each that
    /// calls aetrain has only flags `aetrain help` lists, and each other one names a script of
    /// `deploy/` (after any `NAME=value` environment assignments).
    func testMeasurementLogCommands() throws {
        let logs = try Self.markdownFiles(in: Self.logs)
        XCTAssertFalse(logs.isEmpty, "no measurement logs in \(Self.logs)")
        var checked = 0
        for log in logs {
            for example in Self.examples(in: try Self.read(log)) {
                let at = "\(log):\(example.line): \(example.text)"
                guard example.kind == .shell else { XCTFail("a measurement log runs no Python: \(at)"); continue }
                let words = Self.words(example.text)
                if let program = words.firstIndex(where: { $0 == "aetrain" || $0 == ".build/release/aetrain" }) {
                    try checkFlags(Array(words[(program + 1)...]), at)
                } else if words.first == "mpirun" {
                    continue  // a mention of a launch (`mpirun -n 2`), as on the pages
                } else {
                    // Leading environment assignments (`PRECISION=bf16 deploy/…`) set the script's options.
                    let command = Array(words.drop { $0.range(of: "^[A-Z_][A-Z0-9_]*=", options: .regularExpression) != nil })
                    let script = command.first == "bash" && command.count > 1 ? command[1] : command.first ?? ""
                    XCTAssertTrue(script.hasPrefix("deploy/")
                                  && FileManager.default.fileExists(atPath: Self.repository.appendingPathComponent(script).path),
                                  "a logged command that calls neither aetrain nor a script of deploy/: \(at)")
                }
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 0, "the measurement logs hold no commands: every log must say how it was measured")
        print("measurement logs: \(checked) commands checked in \(logs.count) files")
    }

    /// The reader and the rewrites on a small page, without running anything.
    func testReaderFindsEveryKindOfExample() {
        let page = """
            Text `aetrain train --lambda 1`, `--lambda 1`, `python3 -c` and `mpirun -n 2`.

            ```sh
            aetrain bench   # a comment
            aetrain train [--data PATH]
                          [--lambda L]
            python3 -c "print('#')"
            ```

            ```python
            print(1)
            ```
            """
        let found = Self.examples(in: page)
        XCTAssertEqual(found.map(\.text), ["aetrain train --lambda 1", "mpirun -n 2", "aetrain bench",
                                           "aetrain train [--data PATH] [--lambda L]", "python3 -c \"print('#')\"", "print(1)"])
        XCTAssertEqual(found.map(\.line), [1, 1, 4, 5, 7, 11])
        XCTAssertEqual(Self.words("python3 -c \"print('#')\""), ["python3", "-c", "print('#')"])
        XCTAssertTrue(Self.isSynopsis("aetrain report RUN --out x", words: ["aetrain", "report", "RUN", "--out", "x"]))
        XCTAssertFalse(Self.isSynopsis("aetrain pca --out runs/pca", words: ["aetrain", "pca", "--out", "runs/pca"]))
        XCTAssertEqual(Self.shortened(["train", "--iterations", "5001", "--out", "x"]), ["train", "--iterations", "30", "--out", "x"])
        XCTAssertEqual(Self.shortened(["--lambda", "1"]), ["--lambda", "1", "--iterations", "30"])
        XCTAssertEqual(Self.shortened(["bench", "--steps", "100"]), ["bench", "--steps", "20", "--warmup", "2"])
        XCTAssertEqual(Self.shortened(["prepare-lfw", "~/scikit_learn_data/lfw_home/lfw_funneled", "--out", "f.npy"]),
                       ["prepare-lfw", "lfw", "--out", "f.npy"])
    }

    func check(_ run: Run, _ at: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(run.status, 0, "\(at)\nexit \(run.status)\nstderr:\n\(run.stderr)\nstdout (end):\n\(run.stdout.suffix(2000))",
                       file: file, line: line)
    }

    /// Every `--flag` in a synopsis must be an option of its command.
    func checkFlags(_ arguments: [String], _ at: String) throws {
        let command = arguments.first.flatMap { Self.subcommands.contains($0) ? $0 : nil } ?? "train"
        if helpFlags[command] == nil {
            let r = try Harness.aetrain(["help", command])
            XCTAssertEqual(r.status, 0, r.stderr)
            // Option lines start "  --data <data>   …" or "  -h, --help   …"; wrapped descriptions
            // are indented further.
            helpFlags[command] = Set(r.stdout.split(separator: "\n").filter { $0.hasPrefix("  -") }.compactMap { line in
                line.split(separator: " ").first { $0.hasPrefix("--") }.map { String($0.split(separator: ",")[0]) }
            })
        }
        let known = helpFlags[command] ?? []
        for word in arguments {
            let flag = word.trimmingCharacters(in: CharacterSet(charactersIn: "[]")).split(separator: "=")
                .first.map(String.init) ?? ""
            guard flag.hasPrefix("--") else { continue }
            XCTAssertTrue(known.contains(flag), "\(at): \(flag) is not an option of `aetrain \(command)` (aetrain help \(command))")
        }
    }
    var helpFlags: [String: Set<String>] = [:]

    // MARK: - Reading a page

    /// The examples of `markdown`, in order.
    static func examples(in markdown: String) -> [Example] {
        var examples: [Example] = []
        var fence: String?        // the language of the open fenced block
        var block: [String] = [], blockStart = 0
        for (index, line) in markdown.components(separatedBy: "\n").enumerated() {
            let number = index + 1
            if line.hasPrefix("```") {
                if let language = fence {
                    if language == "python" {
                        examples.append(Example(kind: .python, text: block.joined(separator: "\n"), line: blockStart))
                    }
                    fence = nil
                } else {
                    fence = String(line.dropFirst(3)).trimmingCharacters(in: .whitespaces)
                    block = []
                    blockStart = number + 1
                }
                continue
            }
            switch fence {
            case "sh"?:
                let text = stripComment(line)
                let continues = line.first == " " || examples.last?.text.hasSuffix("\\") == true
                if continues, let last = examples.last, last.line >= blockStart {
                    var joined = last.text
                    if joined.hasSuffix("\\") { joined.removeLast() }
                    examples[examples.count - 1].text = joined.trimmingCharacters(in: .whitespaces) + " "
                        + text.trimmingCharacters(in: .whitespaces)
                } else if !text.trimmingCharacters(in: .whitespaces).isEmpty {
                    examples.append(Example(kind: .shell, text: text.trimmingCharacters(in: .whitespaces), line: number))
                }
            case .some:
                block.append(line)
            case nil:
                for span in inlineCode(line) where ["aetrain ", "mpirun ", ".build/release/aetrain ", "python3 -c "]
                    .contains(where: { span.hasPrefix($0) }) {
                    examples.append(Example(kind: .shell, text: span, line: number))
                }
            }
        }
        return examples
    }

    /// The contents of the `code spans` of one line.
    static func inlineCode(_ line: String) -> [String] {
        let parts = line.split(separator: "`", omittingEmptySubsequences: false)
        return stride(from: 1, to: parts.count - 1, by: 2).map { String(parts[$0]) }
    }

    /// `line` without a `# comment` (a `#` at the start or after a space, outside quotes).
    static func stripComment(_ line: String) -> String {
        var quote: Character?
        var previous: Character = " "
        for index in line.indices {
            let c = line[index]
            if let q = quote {
                if c == q { quote = nil }
            } else if c == "\"" || c == "'" {
                quote = c
            } else if c == "#", previous == " " {
                return String(line[..<index])
            }
            previous = c
        }
        return line
    }

    /// Shell words: split at spaces outside quotes, quotes removed.
    static func words(_ command: String) -> [String] {
        var words: [String] = [], current = "", inWord = false
        var quote: Character?
        for c in command {
            if let q = quote {
                if c == q { quote = nil } else { current.append(c) }
            } else if c == "\"" || c == "'" {
                quote = c; inWord = true
            } else if c == " " {
                if inWord { words.append(current); current = ""; inWord = false }
            } else {
                current.append(c); inWord = true
            }
        }
        if inWord { words.append(current) }
        return words
    }

    /// A usage synopsis rather than a command: optional parts, alternatives, repetition or a
    /// placeholder in capitals.
    static func isSynopsis(_ text: String, words: [String]) -> Bool {
        text.contains("[") || text.contains("|") || text.contains("...") || text.contains("…")
            || words.contains { $0.count >= 2 && $0.allSatisfy { $0.isUppercase } }
    }

    // MARK: - The rewrite table

    /// The arguments after `aetrain`, shortened as the table in the type's comment says.
    static func shortened(_ arguments: [String]) -> [String] {
        var arguments = arguments.map { word -> String in
            switch word {
            case "~/scikit_learn_data/lfw_home/lfw_funneled": "lfw"
            case "synthetic:13233,37,28": "synthetic:300,37,28"
            default: word
            }
        }
        let command = arguments.first.flatMap { subcommands.contains($0) ? $0 : nil } ?? "train"
        switch command {
        case "train": set("--iterations", "30", in: &arguments)
        case "bench": set("--steps", "20", in: &arguments); set("--warmup", "2", in: &arguments)
        default: break
        }
        return arguments
    }

    /// Replaces the value of `flag`, or appends the flag with `value`.
    static func set(_ flag: String, _ value: String, in arguments: inout [String]) {
        if let k = arguments.firstIndex(of: flag), k + 1 < arguments.count {
            arguments[k + 1] = value
        } else {
            arguments += [flag, value]
        }
    }

    static func rewritePython(_ script: String) -> String {
        script.replacingOccurrences(of: "Sources/AETrainCore/Data/Resources/", with: resources.path + "/")
    }
}
