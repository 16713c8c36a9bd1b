import ArgumentParser
import Foundation
import X402
import X402Sidecar

/// `x402-sidecar lease …`: lease keys and tokens by hand (key rotation, the nginx module's key
/// file, checking a token a client presents).
struct LeaseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lease", abstract: "Make lease keys, render the nginx key file, sign or verify a lease token.",
        subcommands: [KeyGen.self, NginxKeys.self, Sign.self, Verify.self])

    struct KeyFile: ParsableArguments {
        @Option(help: "Lease key file: one `KID ALG KEY` line per key (HS256 secret / EdDSA seed, base64url).")
        var keyFile: String
        @Option(help: "The key to sign with (default: the file's first).") var signingKey: String?

        func load() throws -> LeaseKeyring {
            let text: String
            do {
                text = try String(contentsOfFile: keyFile, encoding: .utf8)
            } catch {
                throw ValidationError("cannot read \(keyFile): \(error.localizedDescription)")
            }
            do {
                return try LeaseKeyring(keyFile: text, signingKeyID: signingKey)
            } catch {
                throw ValidationError("\(keyFile): \(error)")
            }
        }
    }

    struct KeyGen: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "keygen", abstract: "Print a new random key as a key-file line (keep it secret).")

        @Option(help: "HS256 or EdDSA.") var alg = "EdDSA"
        @Option(help: "Key id (1-64 of A-Z a-z 0-9 . _ -).") var kid: String

        func run() throws {
            guard let algorithm = LeaseAlgorithm(rawValue: alg) else {
                throw ValidationError("--alg is HS256 or EdDSA")
            }
            guard LeaseToken.isValidKeyID(kid) else { throw ValidationError("--kid must be 1-64 of A-Z a-z 0-9 . _ -") }
            print(LeaseKeyring.generateKeyLine(algorithm: algorithm, keyID: kid))
        }
    }

    struct NginxKeys: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "nginx-keys",
            abstract: "Print the key file the nginx module reads (HS256 secrets, EdDSA public keys).")

        @OptionGroup var keys: KeyFile

        func run() throws {
            print(try keys.load().nginxKeyFile(), terminator: "")
        }
    }

    struct Sign: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Sign lease claims (a JSON object, as in a token) with the signing key; print the token.")

        @OptionGroup var keys: KeyFile
        @Option(help: "The claims as JSON.") var claims: String

        func run() throws {
            switch LeaseClaims.decode(json: Array(claims.utf8)) {
            case .success(let decoded): print(try keys.load().issue(decoded))
            case .failure(let failure): throw ValidationError("\(failure.reason.rawValue): \(failure.message)")
            }
        }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Verify a token for a route and host; print its claims, or the reason it is refused (exit 1).")

        @OptionGroup var keys: KeyFile
        @Option(help: "Route name the request is for.") var route: String
        @Option(help: "Client-visible host (a port is dropped).") var host: String
        @Option(help: "Unix time to check at (default: now).") var now: Int64?
        @Option(help: "Clock skew in seconds.") var skew: Int64 = 30
        @Argument(help: "The token.") var token: String

        func run() throws {
            guard let normalized = LeaseClaims.normalizedHost(host) else {
                throw ValidationError("--host is not a host")
            }
            let expectation = LeaseExpectation(
                route: route, host: normalized, now: now ?? Int64(Date().timeIntervalSince1970), clockSkew: skew)
            switch try keys.load().verify(token, expecting: expectation) {
            case .success(let claims): print(String(decoding: claims.json, as: UTF8.self))
            case .failure(let failure):
                print("\(failure.reason.rawValue): \(failure.message)")
                throw ExitCode(1)
            }
        }
    }
}
