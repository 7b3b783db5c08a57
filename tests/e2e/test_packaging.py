"""Install and package netlab as Debian does: `cmake --install` (with a prefix and with DESTDIR),
the generated man pages checked against `--help` and rendered by man(1) without warnings, the bash
and zsh completions, the .deb built by cpack from this build tree (nothing rebuilt) unpacked in a
scratch root with `dpkg -x`, and the default build type.

Needs $NETLAB_BUILD_DIR (the CMake build tree, set by tests/CMakeLists.txt; default: the directory
of $NETLAB_BIN), cmake/cpack, dpkg-dev, man-db, bash and zsh (scripts/deps.sh installs them).
"""
import gzip
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from netlab_e2e import EXIT, NETLAB, NetlabTestCase, Proc, scaled

BUILD = os.environ.get("NETLAB_BUILD_DIR", os.path.dirname(os.path.abspath(NETLAB)))
SOURCE = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MAN1 = "share/man/man1"
BASH_COMPLETION = "share/bash-completion/completions/netlab"
ZSH_COMPLETION = "share/zsh/vendor-completions/_netlab"


def run(argv, timeout=120, env=None, check=True):
    """Runs argv to completion (text output); fails the test with its output when check and rc != 0."""
    p = subprocess.run(argv, capture_output=True, text=True, timeout=scaled(timeout), env=env,
                       stdin=subprocess.DEVNULL)
    if check and p.returncode != 0:
        raise AssertionError("%s exited %d:\n%s\n%s" % (argv, p.returncode, p.stdout[-3000:], p.stderr[-3000:]))
    return p


def help_of(*words):
    """`netlab WORDS --help`: (subcommand names, option names) as --help lists them."""
    text = run([NETLAB] + list(words) + ["--help"], timeout=20).stdout
    subs, opts, section = [], [], None
    for line in text.splitlines():
        if line and not line.startswith(" "):
            section = line.rstrip(":")
            continue
        m = re.match(r"^  (\S+)", line)
        if not m:
            continue
        if section == "Subcommands":
            subs.append(m.group(1))
        elif section == "Options" and m.group(1).startswith("-"):
            opts.extend(m.group(1).split(","))
    return subs, opts


def render(page, locale="C.UTF-8"):
    """man's rendering of a page at 80 columns: (text, warnings and errors)."""
    env = dict(os.environ, MANWIDTH="80", LC_ALL=locale)
    env.pop("MAN_KEEP_FORMATTING", None)
    p = subprocess.run(["man", "--warnings", "-l", page], capture_output=True, timeout=scaled(30),
                       env=env, stdin=subprocess.DEVNULL)
    # Piped output has no overstrike; drop any left so words compare as typed.
    text = re.sub(r".\x08", "", p.stdout.decode("utf-8", "replace"))
    return text, p.stderr.decode("utf-8", "replace") + ("" if p.returncode == 0 else "man exited %d" % p.returncode)


def elf_sections(binary):
    out = run(["readelf", "-S", "-W", binary], timeout=30).stdout
    return set(re.findall(r"\]\s+(\.\S+)", out))


def assert_stripped(test, binary):
    debug = sorted(s for s in elf_sections(binary) if s.startswith(".debug") or s == ".symtab")
    test.assertEqual(debug, [], "%s keeps debug info / symbols" % binary)


def assert_tcp_exchange(test, binary):
    """binary's tcp serve + tcp dial on 127.0.0.1: the default acknowledgement comes back."""
    srv = Proc([binary, "tcp", "serve", "--listen", "127.0.0.1:0", "--json"])
    try:
        port = srv.await_json("listening", timeout=10)["port"]
        p = run([binary, "tcp", "dial", "127.0.0.1:%d" % port, "-m", "hello deb"], timeout=20)
        test.assertEqual(p.stdout, "server received: hello deb")
        test.assertEqual(srv.terminate(), EXIT["ok"], srv.stderr())
    finally:
        srv.close()


class Installed(NetlabTestCase):
    """`cmake --install BUILD --prefix P` once for the class; the pages and completions it installs."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="netlab-install-")
        cls.prefix = os.path.join(cls.tmp, "usr")
        try:
            run(["cmake", "--install", BUILD, "--prefix", cls.prefix])
            cls.groups = [g for g in help_of()[0] if g != "help"]  # `netlab help` has no page of its own
        except BaseException:
            shutil.rmtree(cls.tmp, ignore_errors=True)  # tearDownClass does not run then
            raise

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def path(self, rel):
        return os.path.join(self.prefix, rel)

    def test_installs_binary_pages_completions_and_docs(self):
        self.assertEqual(sorted(self.groups), sorted(["ws-echo", "tcp", "udp", "udp-file"]))
        binary = self.path("bin/netlab")
        self.assertTrue(os.access(binary, os.X_OK), binary)
        version = run([binary, "--version"], timeout=10).stdout.strip()
        self.assertEqual(version, run([NETLAB, "--version"], timeout=10).stdout.strip())
        # The build tree's binary has debug info (scripts/test.sh builds -g1); the installed one not.
        assert_stripped(self, binary)
        pages = sorted(os.listdir(self.path(MAN1)))
        self.assertEqual(pages, sorted(["netlab.1.gz"] + ["netlab-%s.1.gz" % g for g in self.groups]))
        for page in pages:  # gzip -n: no file name or time stamp in the header (reproducible)
            with open(os.path.join(self.path(MAN1), page), "rb") as f:
                header = f.read(10)
            self.assertEqual(header[:2], b"\x1f\x8b", page)
            self.assertEqual(header[3] & 0x08, 0, "%s has a file name in its gzip header" % page)
            self.assertEqual(header[4:8], b"\0\0\0\0", "%s has a time stamp in its gzip header" % page)
        self.assertTrue(os.path.isfile(self.path(BASH_COMPLETION)))
        self.assertTrue(os.path.isfile(self.path(ZSH_COMPLETION)))
        self.assertTrue(os.path.isfile(self.path("share/doc/netlab/exit-codes.md")))

    def test_each_page_renders_without_warnings_and_lists_every_option_of_help(self):
        global_opts = help_of()[1]
        self.assertIn("--json", global_opts)
        text, warnings = render(self.path(MAN1 + "/netlab.1.gz"))
        self.assertEqual(warnings, "", "netlab.1")
        for opt in global_opts:
            self.assertIn(opt, text, "netlab.1 lacks %s" % opt)
        for group in self.groups:
            self.assertIn("netlab-%s(1)" % group, text)
        for group in self.groups:
            page = "netlab-%s.1" % group
            text, warnings = render(self.path(MAN1 + "/" + page + ".gz"))
            self.assertEqual(warnings, "", page)
            # And on an ASCII terminal (C locale), where non-ASCII text has a stand-in.
            self.assertEqual(render(self.path(MAN1 + "/" + page + ".gz"), "C")[1], "", page + " in the C locale")
            self.assertRegex(text, r"(?m)^NAME\n\s+netlab-%s - \S" % re.escape(group))
            commands, group_opts = help_of(group)
            self.assertTrue(commands, "netlab %s --help lists no commands" % group)
            for opt in group_opts:
                self.assertIn(opt, text, "%s lacks %s (netlab %s --help)" % (page, opt, group))
            for cmd in commands:
                self.assertRegex(text, r"(?m)^   netlab %s %s$" % (re.escape(group), re.escape(cmd)),
                                 "%s has no section for %s" % (page, cmd))
                opts = help_of(group, cmd)[1]
                self.assertGreater(len(opts), 2, "netlab %s %s --help" % (group, cmd))
                section = text.split("   netlab %s %s\n" % (group, cmd), 1)[1]
                for opt in opts:
                    # In the command's own section (after its heading), or a global option.
                    self.assertTrue(re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(opt), section)
                                    or opt in global_opts,
                                    "%s lacks %s of 'netlab %s %s --help'" % (page, opt, group, cmd))
            self.assertIn("EXIT STATUS", text)
            for code in EXIT.values():
                self.assertRegex(text, r"(?m)^       %d\s" % code, "%s: exit code %d" % (page, code))
            self.assertIn("SEE ALSO", text)
            self.assertIn("netlab(1)", text)

    def test_page_shows_defaults_and_descriptions(self):
        text, _ = render(self.path(MAN1 + "/netlab-tcp.1.gz"))
        serve = text.split("   netlab tcp serve\n", 1)[1]
        self.assertRegex(serve, r"-l, --listen HOST:PORT\n\s+address to listen on")
        self.assertRegex(serve, r"--mode \S*\n\s+what to do with received data.*\n\s+Default: ack")
        self.assertIn("RFC 862", serve)  # the command's footer (its modes)
        self.assertIn("--reply '伺服器端回傳伺服器端已接收到 {msg}' --once", serve)  # UTF-8 kept

    def bash_complete(self, *words):
        """Sources the installed bash completion and calls _netlab for `words` (the last one is being
        completed): the candidates, one per line."""
        script = ('source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _netlab; '
                  'printf "%s\\n" "${COMPREPLY[@]}"')
        p = run(["bash", "--norc", "--noprofile", "-c", script, "bash", self.path(BASH_COMPLETION)] + list(words),
                timeout=20)
        return [w for w in p.stdout.split("\n") if w]

    def test_bash_completion(self):
        self.assertEqual(self.bash_complete("netlab", "tc"), ["tcp"])
        self.assertEqual(self.bash_complete("netlab", "tcp", "serve", "--li"), ["--listen"])
        self.assertEqual(sorted(self.bash_complete("netlab", "")), sorted(self.groups + ["help"]))
        self.assertEqual(sorted(self.bash_complete("netlab", "udp-file", "")), sorted(help_of("udp-file")[0]))
        # A value-taking option's value is skipped, global flags work anywhere, choices complete.
        self.assertEqual(self.bash_complete("netlab", "-v", "tcp", "serve", "-l", "127.0.0.1", "--mo"), ["--mode"])
        self.assertEqual(sorted(self.bash_complete("netlab", "tcp", "serve", "--mode", "")), ["ack", "discard", "echo"])
        self.assertIn("--json", self.bash_complete("netlab", "udp", "send", "--j"))
        # Every option of a command's --help is offered after "-".
        for group in self.groups:
            for cmd in help_of(group)[0]:
                got = set(self.bash_complete("netlab", group, cmd, "-"))
                missing = set(help_of(group, cmd)[1]) - got
                self.assertEqual(missing, set(), "netlab %s %s -<TAB>" % (group, cmd))

    def zsh_complete(self, *words):
        """Runs the installed zsh completion for `words` with _describe/compadd/_files stubbed to
        print what they are given: the offered names."""
        script = r'''
_describe() { local a; for a in "${(@P)${@[-1]}}"; do print -r -- "${a%%:*}"; done }
compadd() { [[ $1 == -a ]] && print -rl -- "${(@P)2}" }
_files() { print -r -- "<files>" }
words=("${@[2,-1]}"); CURRENT=${#words}; PREFIX=${words[-1]}
source "$1"
'''
        p = run(["zsh", "-f", "-c", script, "zsh", self.path(ZSH_COMPLETION)] + list(words), timeout=20)
        return [w for w in p.stdout.split("\n") if w and w.startswith(words[-1])]

    def test_zsh_completion(self):
        self.assertEqual(run(["zsh", "-n", self.path(ZSH_COMPLETION)], timeout=20).returncode, 0)
        with open(self.path(ZSH_COMPLETION)) as f:
            self.assertEqual(f.readline(), "#compdef netlab\n")
        self.assertEqual(self.zsh_complete("netlab", "tc"), ["tcp"])
        self.assertEqual(self.zsh_complete("netlab", "tcp", "serve", "--li"), ["--listen"])
        self.assertEqual(sorted(self.zsh_complete("netlab", "")), sorted(self.groups + ["help"]))
        self.assertEqual(self.zsh_complete("netlab", "-v", "tcp", "serve", "-l", "127.0.0.1:0", "--mo"), ["--mode"])
        self.assertEqual(sorted(self.zsh_complete("netlab", "tcp", "serve", "--mode", "")), ["ack", "discard", "echo"])


class InstallDestdir(NetlabTestCase):
    def test_destdir_stages_under_it(self):
        tmp = tempfile.mkdtemp(prefix="netlab-destdir-")
        self.addCleanup(shutil.rmtree, tmp, True)
        run(["cmake", "--install", BUILD, "--prefix", "/opt/netlab-test"], env=dict(os.environ, DESTDIR=tmp))
        self.assertFalse(os.path.exists("/opt/netlab-test"))
        root = os.path.join(tmp, "opt/netlab-test")
        self.assertEqual(sorted(os.listdir(tmp)), ["opt"])
        for rel in ("bin/netlab", MAN1 + "/netlab.1.gz", MAN1 + "/netlab-tcp.1.gz", BASH_COMPLETION, ZSH_COMPLETION):
            self.assertTrue(os.path.isfile(os.path.join(root, rel)), rel)
        assert_stripped(self, os.path.join(root, "bin/netlab"))


class DebianPackage(NetlabTestCase):
    """cpack -G DEB from the build tree, unpacked with dpkg -x into a scratch root."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="netlab-deb-")
        out = os.path.join(cls.tmp, "out")
        try:
            # cpack installs this build tree into its staging area (its "preinstall" step finds
            # everything up to date: the suite runs after the build) and packs it.
            run(["cpack", "-G", "DEB", "--config", os.path.join(BUILD, "CPackConfig.cmake"), "-B", out], timeout=180)
            cls.version = run([NETLAB, "--version"], timeout=10).stdout.split()[-1]
            cls.debs = sorted(f for f in os.listdir(out) if f.endswith(".deb"))
            cls.deb = os.path.join(out, "netlab_%s_amd64.deb" % cls.version)
            cls.root = os.path.join(cls.tmp, "root")
            if os.path.isfile(cls.deb):
                run(["dpkg", "-x", cls.deb, cls.root], timeout=60)
        except BaseException:
            shutil.rmtree(cls.tmp, ignore_errors=True)
            raise

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_package_name_and_control_fields(self):
        self.assertEqual(self.debs, ["netlab_%s_amd64.deb" % self.version])
        fields = run(["dpkg-deb", "-f", self.deb, "Package", "Version", "Architecture", "Depends", "Section"],
                     timeout=30).stdout
        self.assertIn("Package: netlab\n", fields)
        self.assertIn("Version: %s\n" % self.version, fields)
        self.assertIn("Architecture: amd64\n", fields)
        self.assertIn("Section: net\n", fields)
        # From dpkg-shlibdeps: the C library and the shared libraries netlab links (OpenSSL, fmt).
        depends = re.search(r"(?m)^Depends: (.*)$", fields)
        self.assertIsNotNone(depends, fields)
        names = [d.strip().split()[0] for d in depends.group(1).split(",")]
        self.assertIn("libc6", names)
        self.assertTrue(any(n.startswith("libssl") for n in names), names)

    def test_unpacked_binary_runs_and_serves(self):
        binary = os.path.join(self.root, "usr/bin/netlab")
        p = run([binary, "--version"], timeout=10)
        self.assertEqual(p.stdout.strip(), "netlab " + self.version)
        assert_stripped(self, binary)
        assert_tcp_exchange(self, binary)

    def test_package_holds_pages_completions_and_docs(self):
        man1 = os.path.join(self.root, "usr", MAN1)
        self.assertEqual(sorted(os.listdir(man1)),
                         sorted(["netlab.1.gz"] + ["netlab-%s.1.gz" % g for g in help_of()[0] if g != "help"]))
        with gzip.open(os.path.join(man1, "netlab-udp-file.1.gz"), "rt") as f:
            self.assertIn(".TH \"netlab\\-udp\\-file\" 1", f.read())
        self.assertTrue(os.path.isfile(os.path.join(self.root, "usr", BASH_COMPLETION)))
        self.assertTrue(os.path.isfile(os.path.join(self.root, "usr", ZSH_COMPLETION)))
        self.assertTrue(os.path.isfile(os.path.join(self.root, "usr/share/doc/netlab/README.md")))
        # Nothing outside /usr (no /usr/local, no build paths).
        self.assertEqual(os.listdir(self.root), ["usr"])


class Demo(unittest.TestCase):
    def test_demo_asks_only_for_build_dependencies_and_runs(self):
        """scripts/demo.sh on this build: the packages it makes sure of (a dpkg-query on PATH that
        records its questions and answers "installed", so nothing is installed) are the build
        dependencies, never the test peers or Chromium; and every exchange of the demo works."""
        tmp = tempfile.mkdtemp(prefix="netlab-demo-")
        self.addCleanup(shutil.rmtree, tmp, True)
        asked = os.path.join(tmp, "asked")
        stub = os.path.join(tmp, "dpkg-query")
        with open(stub, "w") as f:
            f.write('#!/bin/sh\nfor a; do last=$a; done\necho "$last" >> "%s"\nprintf "install ok installed"\n' % asked)
        os.chmod(stub, 0o755)
        env = dict(os.environ, PATH=tmp + ":" + os.environ["PATH"], NETLAB_BUILD=os.path.dirname(os.path.abspath(NETLAB)))
        p = run([os.path.join(SOURCE, "scripts/demo.sh")], timeout=120, env=env, check=False)
        self.assertEqual(p.returncode, 0, p.stdout[-3000:] + p.stderr[-3000:])
        self.assertIn("demo: every exchange worked", p.stdout)
        with open(asked) as f:
            packages = set(f.read().split())
        self.assertIn("libwebsocketpp-dev", packages)
        self.assertIn("cmake", packages)
        peers = {"chromium", "socat", "python3-websockets", "node-ws", "tftpd-hpa", "tftp-hpa", "curl", "clang-14", "zsh"}
        self.assertEqual(packages & peers, set())


class DefaultBuildType(unittest.TestCase):
    def test_configure_without_build_type_is_release(self):
        tmp = tempfile.mkdtemp(prefix="netlab-configure-")
        self.addCleanup(shutil.rmtree, tmp, True)
        run(["cmake", "-S", SOURCE, "-B", tmp, "-DNETLAB_TESTS=OFF"], timeout=120)
        with open(os.path.join(tmp, "CMakeCache.txt")) as f:
            self.assertRegex(f.read(), r"(?m)^CMAKE_BUILD_TYPE:STRING=Release$")


if __name__ == "__main__":
    unittest.main()
