"""Links planted by another user (uid 65534, through setpriv) are never
followed: not at the spool's own name, not at a directory on its path,
not inside a Maildir.  Each case was followed by root before."""
import os
import shutil
import subprocess
import tempfile

from common import BIN, SpoolTest

NOBODY = 65534


def as_nobody(*cmd):
    subprocess.run(["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY,
                    "--clear-groups"] + list(cmd), check=True)


class PlantedLinksTest(SpoolTest):

    def setUp(self):
        super().setUp()
        if os.geteuid() != 0 or not shutil.which("setpriv"):
            self.skipTest("needs root and setpriv")
        # a place everyone can reach, with a directory nobody owns
        self.base = tempfile.mkdtemp(prefix="lslinks.")
        self.addCleanup(shutil.rmtree, self.base, True)
        os.chmod(self.base, 0o755)
        self.theirs = os.path.join(self.base, "nobody")
        os.mkdir(self.theirs, 0o755)
        os.chown(self.theirs, NOBODY, NOBODY)
        # root's things
        self.mine = os.path.join(self.base, "root")
        os.mkdir(self.mine, 0o755)

    def root_add(self, path, text="hunter2"):
        return subprocess.run([BIN, "-s", path, "add", text],
                              capture_output=True, env=self.env)

    def test_spool_name_linked_to_a_file_of_root(self):
        secret = os.path.join(self.mine, "secret")
        with open(secret, "w") as f:
            f.write("")
        os.chmod(secret, 0o600)
        link = os.path.join(self.theirs, "spool.db")
        as_nobody("ln", "-s", secret, link)
        p = self.root_add(link)
        self.assertPassedOn(p, 73, ["hunter2"], "spool.db",
                            "owned by someone else")
        self.assertEqual(os.path.getsize(secret), 0)
        self.assertFalse(os.path.exists(secret + "-wal"))

    def test_directory_link_on_the_path(self):
        link = os.path.join(self.theirs, "d")
        as_nobody("ln", "-s", self.mine, link)
        p = self.root_add(os.path.join(link, "spool.db"))
        self.assertPassedOn(p, 73, ["hunter2"], "nobody/d",
                            "owned by someone else")
        self.assertEqual(os.listdir(self.mine), [])

    def test_directory_link_to_an_empty_file_of_root(self):
        empty = os.path.join(self.mine, "spool.db")
        open(empty, "w").close()
        os.chmod(empty, 0o644)
        link = os.path.join(self.theirs, "d")
        as_nobody("ln", "-s", self.mine, link)
        p = self.root_add(os.path.join(link, "spool.db"))
        self.assertEqual(p.returncode, 73, p.stderr)
        self.assertEqual(os.path.getsize(empty), 0)  # not made a spool

    def test_deep_link_several_levels_up(self):
        os.makedirs(os.path.join(self.mine, "a", "b"))
        link = os.path.join(self.theirs, "up")
        as_nobody("ln", "-s", os.path.join(self.mine, "a"), link)
        p = self.root_add(os.path.join(link, "b", "c", "spool.db"))
        self.assertEqual(p.returncode, 73, p.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.mine, "a", "b",
                                                     "c")))

    def test_write_ahead_log_name_linked(self):
        spool = os.path.join(self.theirs, "spool.db")
        self.assertEqual(self.root_add(spool, "first").returncode, 0)
        target = os.path.join(self.mine, "victim")
        open(target, "w").close()
        for f in ("spool.db-wal", "spool.db-shm"):
            if os.path.exists(os.path.join(self.theirs, f)):
                os.unlink(os.path.join(self.theirs, f))
        as_nobody("ln", "-s", target, spool + "-wal")
        p = self.root_add(spool, "second")
        self.assertEqual(p.returncode, 73, p.stderr)
        self.assertIn(b"spool.db-wal", p.stderr)
        self.assertEqual(os.path.getsize(target), 0)

    def test_links_of_root_and_of_ones_own_are_followed(self):
        # /var/run -> /run style: a link root made, to root's directory
        link = os.path.join(self.mine, "link")
        os.symlink(os.path.join(self.mine, "real"), link)
        os.mkdir(os.path.join(self.mine, "real"))
        self.assertEqual(self.root_add(os.path.join(link, "spool.db"))
                         .returncode, 0)
        self.assertTrue(os.path.exists(os.path.join(self.mine, "real",
                                                    "spool.db")))

    def test_maildir_new_replaced_by_a_link(self):
        md = os.path.join(self.theirs, "Maildir")
        elsewhere = os.path.join(self.theirs, "elsewhere")
        as_nobody("mkdir", "-p", md + "/tmp", md + "/cur", elsewhere)
        as_nobody("ln", "-s", elsewhere, md + "/new")
        cfg = os.path.join(self.dir, "md.conf")
        with open(cfg, "w") as f:
            f.write("[mail]\nfrom = a@b.c\nto = d@e.f\ntransport = maildir"
                    "\n[maildir]\npath = %s\n" % md)
        self.env["LOGSPONGE_CONFIG"] = cfg
        self.add(b"for the maildir\n")
        p = self.run_ls("flush", "--force", check=False)
        self.assertOneLineError(p, 74, "Maildir/new", "not followed")
        self.assertEqual(os.listdir(elsewhere), [])
        self.assertEqual(os.listdir(md + "/tmp"), [])
        self.assertEqual(self.db_messages(), ["for the maildir"])
