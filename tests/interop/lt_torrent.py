#!/usr/bin/python3
"""libtorrent 2.0.8 as the reference for .torrent files and magnet links (run with Debian's /usr/bin/python3).

  lt_torrent.py create FILE OUT.torrent [--piece-length N] [--v1-only] [--tracker URL]...
  lt_torrent.py inspect TORRENT
  lt_torrent.py make_magnet TORRENT
  lt_torrent.py parse_magnet URI

Every command prints one JSON object on stdout (inspect/create: the torrent as libtorrent sees it).
"""
import json
import os
import sys

import libtorrent as lt


def describe(ti):
    fs = ti.files()
    files = []
    for i in range(fs.num_files()):
        files.append({"path": fs.file_path(i), "size": fs.file_size(i),
                      "pad": bool(fs.file_flags(i) & lt.file_storage.flag_pad_file)})
    ih = ti.info_hashes()
    v2 = str(ih.v2)
    return {"name": ti.name(), "info_hash_v1": str(ih.v1),
            "info_hash_v2": None if set(v2) == {"0"} else v2,
            "num_pieces": ti.num_pieces(), "piece_length": ti.piece_length(), "total_size": ti.total_size(),
            "files": files, "trackers": [t.url for t in ti.trackers()]}


def main(argv):
    cmd = argv[1]
    if cmd == "create":
        path, out = argv[2], argv[3]
        piece, flags, trackers = 0, 0, []
        i = 4
        while i < len(argv):
            if argv[i] == "--piece-length":
                piece = int(argv[i + 1]); i += 2
            elif argv[i] == "--v1-only":
                flags |= lt.create_torrent.v1_only; i += 1
            elif argv[i] == "--tracker":
                trackers.append(argv[i + 1]); i += 2
            else:
                raise SystemExit("unknown option " + argv[i])
        fs = lt.file_storage()
        lt.add_files(fs, path)
        ct = lt.create_torrent(fs, piece, flags)
        for t in trackers:
            ct.add_tracker(t)
        lt.set_piece_hashes(ct, os.path.dirname(os.path.abspath(path)))
        data = lt.bencode(ct.generate())
        with open(out, "wb") as f:
            f.write(data)
        print(json.dumps(describe(lt.torrent_info(out))))
    elif cmd == "inspect":
        print(json.dumps(describe(lt.torrent_info(argv[2]))))
    elif cmd == "make_magnet":
        print(json.dumps({"uri": lt.make_magnet_uri(lt.torrent_info(argv[2]))}))
    elif cmd == "parse_magnet":
        p = lt.parse_magnet_uri(argv[2])
        print(json.dumps({"info_hash_v1": str(p.info_hashes.v1), "name": p.name, "trackers": list(p.trackers)}))
    else:
        raise SystemExit("unknown command " + cmd)


if __name__ == "__main__":
    main(sys.argv)
