// Man pages (roff, man(7) macros) and bash/zsh completions written from the CLI11 App tree that
// make_app() builds: every command, option, description and default comes from the same
// definitions `--help` prints, so a new flag appears in the installed docs without editing them.
#include "docgen.hpp"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <vector>

#include "cli.hpp"
#include "netlab/core/exit_code.hpp"

namespace netlab::cli::docgen {
namespace {

std::vector<const CLI::App*> subcommands_of(const CLI::App* app) {
  std::vector<const CLI::App*> out;
  for (const auto* sub : app->get_subcommands([](const CLI::App* s) { return !s->get_name().empty(); }))
    if (!sub->get_group().empty()) out.push_back(sub);  // an empty group hides a subcommand
  return out;
}

// The command groups, each with its own page: `netlab help` is a command of the top level, shown
// in netlab(1)'s COMMANDS but with no page of its own.
std::vector<const CLI::App*> groups_of(const CLI::App* app) {
  auto out = subcommands_of(app);
  out.erase(std::remove_if(out.begin(), out.end(), [](const CLI::App* g) { return g->get_name() == "help"; }),
            out.end());
  return out;
}

// Visible options (an empty group hides one), positionals and named options apart. Below the top,
// each command's own -h/--help is left out: the top's, documented once, is the same flag.
std::vector<const CLI::Option*> options_of(const CLI::App* app, bool positional) {
  const CLI::Option* help = app->get_parent() ? app->get_help_ptr() : nullptr;
  return app->get_options([positional, help](const CLI::Option* o) {
    return o != help && !o->get_group().empty() &&
           (positional ? o->get_positional() && !o->nonpositional() : o->nonpositional());
  });
}

// A command's own footer; subcommands inherit the top's (the exit codes: EXIT STATUS says them).
std::string footer_of(const CLI::App* app) {
  const CLI::App* top = app;
  while (top->get_parent()) top = top->get_parent();
  return app != top && app->get_footer() == top->get_footer() ? std::string() : app->get_footer();
}

std::vector<std::string> names_of(const CLI::Option* o) {
  std::vector<std::string> out;
  for (const auto& s : o->get_snames()) out.push_back("-" + s);
  for (const auto& l : o->get_lnames()) out.push_back("--" + l);
  return out;
}

bool takes_value(const CLI::Option* o) { return o->get_items_expected_max() > 0; }  // flags expect 0

// The values of a CLI::IsMember check, which CLI11 shows in the type name as "{a,b,c}".
std::vector<std::string> choices_of(const CLI::Option* o) {
  const std::string t = o->get_type_name();
  const auto open = t.find('{');
  const auto close = t.find('}', open);
  std::vector<std::string> out;
  if (open == std::string::npos || close == std::string::npos) return out;
  std::stringstream items(t.substr(open + 1, close - open - 1));
  for (std::string item; std::getline(items, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

std::string full_name(const CLI::App* app) {
  std::string out;
  for (const CLI::App* a = app; a != nullptr; a = a->get_parent())
    out = a->get_name() + (out.empty() ? "" : " " + out);
  return out;
}

// ---- roff ----

// The code point of the UTF-8 sequence at s[i] (advancing i past it), or '?' for a bad byte.
unsigned long next_code_point(const std::string& s, std::size_t& i) {
  const auto b = static_cast<unsigned char>(s[i++]);
  const int extra = b >= 0xF0 ? 3 : b >= 0xE0 ? 2 : b >= 0xC0 ? 1 : -1;
  if (extra < 0 || i + extra > s.size()) return '?';
  unsigned long cp = b & (0x3F >> extra);
  for (int k = 0; k < extra; ++k) {
    const auto c = static_cast<unsigned char>(s[i]);
    if ((c & 0xC0) != 0x80) return '?';
    cp = (cp << 6) | (c & 0x3F);
    ++i;
  }
  return cp;
}

// Text for a roff line: backslashes and minus signs escaped (an unescaped '-' may become a
// hyphen, and then a copied "--listen" no longer works), no control character at the start, and
// other than ASCII as \[uXXXX] (with_fallbacks() gives those a stand-in for ASCII terminals).
std::string roff(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size();) {
    const char c = s[i];
    if (static_cast<unsigned char>(c) >= 0x80) {
      char u[16];
      std::snprintf(u, sizeof u, "\\[u%04lX]", next_code_point(s, i));
      out += u;
      continue;
    }
    ++i;
    if (c == '\\') out += "\\e";
    else if (c == '-') out += "\\-";
    else if (c == '\n') out += ' ';  // one roff line: a break could start a line with '.'
    else out += c;
  }
  if (!out.empty() && (out[0] == '.' || out[0] == '\'')) out.insert(0, "\\&");
  return out;
}

std::string bold(const std::string& s) { return "\\fB" + roff(s) + "\\fR"; }
std::string italic(const std::string& s) { return "\\fI" + roff(s) + "\\fR"; }

// A footer is preformatted text (aligned columns, examples): kept as it is, without filling.
void footer_block(std::ostream& out, const std::string& footer) {
  if (footer.empty()) return;
  out << ".PP\n.nf\n";
  std::stringstream lines(footer);
  for (std::string line; std::getline(lines, line);) out << (line.empty() ? "" : roff(line)) << "\n";
  out << ".fi\n";
}

void option_entries(std::ostream& out, const CLI::App* app) {
  for (const auto* o : options_of(app, false)) {
    std::string term;
    for (const auto& n : names_of(o)) term += (term.empty() ? "" : ", ") + bold(n);
    if (takes_value(o) && !o->get_type_name().empty()) term += " " + italic(o->get_type_name());
    out << ".TP\n" << term << "\n";
    std::string text = o->get_description();
    if (o->get_required()) text += " (required)";
    // A description that states its default itself ("default: one per CPU core") keeps it: the
    // value CLI11 holds then is the build machine's, not the user's.
    const std::string def = o->get_default_str();
    if (takes_value(o) && !def.empty() && text.find("default") == std::string::npos)
      out << roff(text) << "\n.br\nDefault: " << bold(def) << "\n";
    else
      out << roff(text) << "\n";
  }
}

std::string usage_of(const CLI::App* app) {
  std::string s = bold(full_name(app));
  if (!options_of(app, false).empty()) s += " [" + italic("OPTIONS") + "]";
  if (!subcommands_of(app).empty()) s += " " + italic("COMMAND");
  for (const auto* p : options_of(app, true)) {
    std::string n = italic(p->get_name(true, false));
    if (p->get_expected_max() > 1) n += "...";
    s += " " + (p->get_required() ? n : "[" + n + "]");
  }
  return s;
}

// One command and, below it, every command under it, each as a subsection.
void command_sections(std::ostream& out, const CLI::App* app) {
  const auto subs = subcommands_of(app);
  if (app->get_parent() && app->get_parent()->get_parent()) {  // a command below its group
    out << ".SS \"" << roff(full_name(app)) << "\"\n" << usage_of(app) << "\n.PP\n" << roff(app->get_description()) << "\n";
    for (const auto* p : options_of(app, true))
      out << ".TP\n" << italic(p->get_name(true, false)) << "\n" << roff(p->get_description()) << "\n";
    option_entries(out, app);
    footer_block(out, footer_of(app));
  }
  for (const auto* sub : subs) command_sections(out, sub);
}

void exit_status(std::ostream& out) {
  out << ".SH \"EXIT STATUS\"\nThe same for every command:\n";
  for (const auto& row : exit_codes)
    out << ".TP\n" << bold(std::to_string(static_cast<int>(row.code))) << "\n" << roff(std::string(row.meaning)) << "\n";
}

void header(std::ostream& out, const std::string& page, const std::string& description) {
  out << ".\\\" Generated by `netlab --generate-man` from netlab's command-line definitions: do not edit.\n"
      << ".TH \"" << roff(page) << "\" 1 \"\" \"netlab " NETLAB_VERSION "\" \"User Commands\"\n"
      << ".nh\n.ad l\n"  // no hyphenation, no justification: option names stay whole, copyable
      << ".SH NAME\n" << roff(page) << " \\- " << roff(description) << "\n";
}

void see_also(std::ostream& out, const std::vector<std::string>& pages) {
  out << ".SH \"SEE ALSO\"\n";
  for (std::size_t i = 0; i < pages.size(); ++i)
    out << bold(pages[i]) << "(1)" << (i + 1 < pages.size() ? ",\n" : "\n");
  out << ".PP\nThe full documentation, with example sessions, is installed as Markdown under "
         "share/doc/netlab (/usr/share/doc/netlab from the Debian package; docs/ in the source tree).\n";
}

// A page with a stand-in ("?") for each non-ASCII character it uses, declared after .TH: without
// it, man in the C locale (ASCII output) warns "can't find special character" for the Chinese
// example of tcp serve. `.fchar` applies only where the output device lacks the glyph (not UTF-8).
std::string with_fallbacks(const std::string& page) {
  std::string decl;
  for (std::size_t at = page.find("\\[u"); at != std::string::npos; at = page.find("\\[u", at + 1)) {
    const std::string glyph = page.substr(at, page.find(']', at) - at + 1);
    if (decl.find(glyph) == std::string::npos) decl += ".fchar " + glyph + " ?\n";
  }
  const auto th_end = page.find('\n', page.find("\n.TH ") + 1) + 1;
  return page.substr(0, th_end) + decl + page.substr(th_end);
}

std::string main_page(const CLI::App& app) {
  std::ostringstream out;
  std::string what = app.get_description();  // "netlab: a network lab..." without the name
  if (what.rfind("netlab: ", 0) == 0) what.erase(0, 8);
  header(out, "netlab", what);
  out << ".SH SYNOPSIS\n" << bold("netlab") << " [" << italic("OPTIONS") << "] " << italic("COMMAND") << " "
      << italic("SUBCOMMAND") << " [" << italic("ARGS") << "]\n"
      << ".SH DESCRIPTION\nnetlab is one program whose subcommands are real servers and clients for the protocols "
         "people learn networking with. Servers print one readiness line with the real address "
         "(\\fB\\-\\-listen 127.0.0.1:0\\fR picks a free port) and stop cleanly on SIGINT or SIGTERM; "
         "results go to standard output (NDJSON with \\fB\\-\\-json\\fR), logs to standard error.\n"
      << ".SH COMMANDS\n";
  for (const auto* g : subcommands_of(&app)) {
    out << ".TP\n" << bold(g->get_name()) << "\n" << roff(g->get_description());
    if (g->get_name() == "help")
      out << ".\n";
    else
      out << "; see " << bold("netlab-" + g->get_name()) << "(1).\n";
  }
  out << ".SH OPTIONS\nAccepted before or after any command.\n";
  option_entries(out, &app);
  exit_status(out);
  std::vector<std::string> pages;
  for (const auto* g : groups_of(&app)) pages.push_back("netlab-" + g->get_name());
  see_also(out, pages);
  return out.str();
}

std::string group_page(const CLI::App& app, const CLI::App* group) {
  std::ostringstream out;
  const std::string page = "netlab-" + group->get_name();
  header(out, page, group->get_description());
  out << ".SH SYNOPSIS\n";
  const auto subs = subcommands_of(group);
  if (subs.empty()) out << usage_of(group) << "\n";
  for (std::size_t i = 0; i < subs.size(); ++i) out << (i ? ".br\n" : "") << usage_of(subs[i]) << "\n";
  out << ".SH DESCRIPTION\n" << roff(group->get_description()) << ".\n";
  for (const auto* sub : subs)
    out << ".TP\n" << bold(full_name(sub)) << "\n" << roff(sub->get_description()) << "\n";
  footer_block(out, footer_of(group));
  if (!options_of(group, false).empty() || !options_of(group, true).empty()) {
    out << ".SH OPTIONS\n";
    for (const auto* p : options_of(group, true))
      out << ".TP\n" << italic(p->get_name(true, false)) << "\n" << roff(p->get_description()) << "\n";
    option_entries(out, group);
  }
  if (!subs.empty()) {
    out << ".SH COMMANDS\n";
    command_sections(out, group);
  }
  out << ".SH \"GLOBAL OPTIONS\"\nAccepted anywhere on the command line; see " << bold("netlab") << "(1).\n";
  option_entries(out, &app);
  exit_status(out);
  std::vector<std::string> pages{"netlab"};
  for (const auto* g : groups_of(&app))
    if (g != group) pages.push_back("netlab-" + g->get_name());
  see_also(out, pages);
  return out.str();
}

// ---- completions ----

// Every command path below the top ("" = netlab itself), depth first.
void paths(const CLI::App* app, const std::string& prefix, std::vector<std::pair<std::string, const CLI::App*>>& out) {
  out.emplace_back(prefix, app);
  for (const auto* sub : subcommands_of(app)) paths(sub, prefix.empty() ? sub->get_name() : prefix + " " + sub->get_name(), out);
}

std::string join(const std::vector<std::string>& v, const char* sep = " ") {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

// A single-quoted shell word.
std::string quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string bash_script(const CLI::App& app) {
  std::vector<std::pair<std::string, const CLI::App*>> all;
  paths(&app, "", all);
  std::ostringstream out;
  out << "# bash completion for netlab. Generated by `netlab --generate-completion bash` from its\n"
         "# command-line definitions: do not edit.\n\n"
         "# _netlab_data KIND PATH: the subcommands (subs), options (opts) or value-taking options\n"
         "# (valued) of the command PATH (\"\" = netlab), or the values of option $3 (choices).\n"
         "_netlab_data() {\n  case \"$1|$2\" in\n";
  for (const auto& [p, a] : all) {
    std::vector<std::string> subs, opts, valued;
    for (const auto* s : subcommands_of(a)) subs.push_back(s->get_name());
    for (const auto* o : options_of(a, false))
      for (const auto& n : names_of(o)) {
        opts.push_back(n);
        if (takes_value(o)) valued.push_back(n);
      }
    if (!subs.empty()) out << "    " << quoted("subs|" + p) << ") echo " << quoted(join(subs)) << " ;;\n";
    if (!opts.empty()) out << "    " << quoted("opts|" + p) << ") echo " << quoted(join(opts)) << " ;;\n";
    if (!valued.empty()) out << "    " << quoted("valued|" + p) << ") echo " << quoted(join(valued)) << " ;;\n";
  }
  out << "  esac\n  if [[ $1 == choices ]]; then\n    case \"$2|$3\" in\n";
  for (const auto& [p, a] : all)
    for (const auto* o : options_of(a, false)) {
      const auto c = choices_of(o);
      if (c.empty()) continue;
      std::vector<std::string> keys;
      for (const auto& n : names_of(o)) keys.push_back(quoted(p + "|" + n));
      out << "      " << join(keys, "|") << ") echo " << quoted(join(c)) << " ;;\n";
    }
  out << "    esac\n  fi\n}\n\n"
         "_netlab() {\n"
         "  local cur=${COMP_WORDS[COMP_CWORD]} cmdpath=\"\" chain=(\"\") word i valued=\"\" value_of=\"\" p\n"
         "  COMPREPLY=()\n"
         "  # Walk the words before the cursor: subcommands descend, an option that takes a value\n"
         "  # skips its value. Options of the commands above apply too (netlab accepts them anywhere).\n"
         "  for ((i = 1; i < COMP_CWORD; i++)); do\n"
         "    word=${COMP_WORDS[i]}\n"
         "    if [[ -n $value_of ]]; then value_of=\"\"; continue; fi\n"
         "    case $word in\n"
         "      -*=*) ;;\n"
         "      -*)\n"
         "        for p in \"${chain[@]}\"; do\n"
         "          [[ \" $(_netlab_data valued \"$p\") \" == *\" $word \"* ]] && value_of=\"$p|$word\"\n"
         "        done ;;\n"
         "      *)\n"
         "        if [[ \" $(_netlab_data subs \"$cmdpath\") \" == *\" $word \"* ]]; then\n"
         "          cmdpath=${cmdpath:+$cmdpath }$word\n"
         "          chain+=(\"$cmdpath\")\n"
         "        fi ;;\n"
         "    esac\n"
         "  done\n"
         "  if [[ -n $value_of ]]; then\n"
         "    local choices; choices=$(_netlab_data choices \"${value_of%%|*}\" \"${value_of#*|}\")\n"
         "    # No fixed values: nothing here, and bash falls back to file names (complete -o default).\n"
         "    [[ -n $choices ]] && COMPREPLY=($(compgen -W \"$choices\" -- \"$cur\"))\n"
         "    return 0\n"
         "  fi\n"
         "  if [[ $cur == -* ]]; then\n"
         "    local opts=\"\"\n"
         "    for p in \"${chain[@]}\"; do opts+=\" $(_netlab_data opts \"$p\")\"; done\n"
         "    COMPREPLY=($(compgen -W \"$opts\" -- \"$cur\"))\n"
         "  else\n"
         "    COMPREPLY=($(compgen -W \"$(_netlab_data subs \"$cmdpath\")\" -- \"$cur\"))\n"
         "  fi\n"
         "  return 0\n"
         "}\n"
         "complete -o default -F _netlab netlab\n";
  return out.str();
}

// "name:description" for zsh's _describe (a colon in the name would end it).
std::string described(const std::string& name, const std::string& desc) {
  std::string n;
  for (char c : name) n += c == ':' ? std::string("\\:") : std::string(1, c);
  return quoted(n + ":" + desc);
}

std::string zsh_script(const CLI::App& app) {
  std::vector<std::pair<std::string, const CLI::App*>> all;
  paths(&app, "", all);
  std::ostringstream out;
  out << "#compdef netlab\n"
         "# zsh completion for netlab. Generated by `netlab --generate-completion zsh` from its\n"
         "# command-line definitions: do not edit.\n\n"
         "# _netlab_data KIND PATH [OPTION]: sets reply to the subcommands (subs) or options (opts) of the\n"
         "# command PATH as name:description, its value-taking options (valued), or an option's values.\n"
         "_netlab_data() {\n  reply=()\n  case \"$1|$2\" in\n";
  for (const auto& [p, a] : all) {
    std::vector<std::string> subs, opts, valued;
    for (const auto* s : subcommands_of(a)) subs.push_back(described(s->get_name(), s->get_description()));
    for (const auto* o : options_of(a, false))
      for (const auto& n : names_of(o)) {
        opts.push_back(described(n, o->get_description()));
        if (takes_value(o)) valued.push_back(quoted(n));
      }
    if (!subs.empty()) out << "    " << quoted("subs|" + p) << ") reply=(" << join(subs) << ") ;;\n";
    if (!opts.empty()) out << "    " << quoted("opts|" + p) << ") reply=(" << join(opts) << ") ;;\n";
    if (!valued.empty()) out << "    " << quoted("valued|" + p) << ") reply=(" << join(valued) << ") ;;\n";
  }
  out << "  esac\n  if [[ $1 == choices ]]; then\n    case \"$2|$3\" in\n";
  for (const auto& [p, a] : all)
    for (const auto* o : options_of(a, false)) {
      const auto c = choices_of(o);
      if (c.empty()) continue;
      std::vector<std::string> keys, values;
      for (const auto& n : names_of(o)) keys.push_back(quoted(p + "|" + n));
      for (const auto& v : c) values.push_back(quoted(v));
      out << "      " << join(keys, "|") << ") reply=(" << join(values) << ") ;;\n";
    }
  out << "    esac\n  fi\n}\n\n"
         "_netlab() {\n"
         "  local cmdpath=\"\" word value_of=\"\" p i\n"
         "  local -a chain reply all\n"
         "  chain=(\"\")\n"
         "  for ((i = 2; i < CURRENT; i++)); do\n"
         "    word=${words[i]}\n"
         "    if [[ -n $value_of ]]; then value_of=\"\"; continue; fi\n"
         "    case $word in\n"
         "      -*=*) ;;\n"
         "      -*)\n"
         "        for p in \"${chain[@]}\"; do\n"
         "          _netlab_data valued \"$p\"\n"
         "          (( ${reply[(Ie)$word]} )) && value_of=\"$p|$word\"\n"
         "        done ;;\n"
         "      *)\n"
         "        _netlab_data subs \"$cmdpath\"\n"
         "        if (( ${reply[(I)${(b)word}:*]} )); then\n"
         "          cmdpath=${cmdpath:+$cmdpath }$word\n"
         "          chain+=(\"$cmdpath\")\n"
         "        fi ;;\n"
         "    esac\n"
         "  done\n"
         "  if [[ -n $value_of ]]; then\n"
         "    _netlab_data choices \"${value_of%%|*}\" \"${value_of#*|}\"\n"
         "    if (( ${#reply} )); then compadd -a reply; else _files; fi\n"
         "    return\n"
         "  fi\n"
         "  if [[ $PREFIX == -* ]]; then\n"
         "    all=()\n"
         "    for p in \"${chain[@]}\"; do _netlab_data opts \"$p\"; all+=(\"${reply[@]}\"); done\n"
         "    _describe -t options 'netlab option' all\n"
         "  else\n"
         "    _netlab_data subs \"$cmdpath\"\n"
         "    if (( ${#reply} )); then _describe -t commands 'netlab command' reply; else _files; fi\n"
         "  fi\n"
         "}\n\n"
         "_netlab \"$@\"\n";
  return out.str();
}

bool write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
  f.close();
  if (!f) {
    std::fprintf(stderr, "netlab: docgen: cannot write %s (does its directory exist and is it writable?)\n", path.c_str());
    return false;
  }
  return true;
}

}  // namespace

bool write_man_pages(const std::string& dir) {
  globals g;
  action chosen;
  const auto app = make_app(g, chosen);
  if (!write_file(dir + "/netlab.1", with_fallbacks(main_page(*app)))) return false;
  for (const auto* group : groups_of(app.get()))
    if (!write_file(dir + "/netlab-" + group->get_name() + ".1", with_fallbacks(group_page(*app, group)))) return false;
  return true;
}

std::optional<std::string> completion_script(const std::string& shell) {
  globals g;
  action chosen;
  const auto app = make_app(g, chosen);
  if (shell == "bash") return bash_script(*app);
  if (shell == "zsh") return zsh_script(*app);
  return std::nullopt;
}

std::optional<int> handle(int argc, char** argv) {
  if (argc < 2) return std::nullopt;
  const std::string flag = argv[1];
  if (flag == "--generate-man") {
    if (argc != 3) {
      std::fprintf(stderr, "netlab: --generate-man: needs one directory (netlab --generate-man DIR)\n");
      return static_cast<int>(exit_code::usage);
    }
    return write_man_pages(argv[2]) ? 0 : static_cast<int>(exit_code::local_io);
  }
  if (flag == "--generate-completion") {
    const auto script = argc == 4 ? completion_script(argv[2]) : std::nullopt;
    if (!script) {
      std::fprintf(stderr, "netlab: --generate-completion: needs a shell and a file (netlab --generate-completion bash|zsh FILE)\n");
      return static_cast<int>(exit_code::usage);
    }
    return write_file(argv[3], *script) ? 0 : static_cast<int>(exit_code::local_io);
  }
  return std::nullopt;
}

}  // namespace netlab::cli::docgen
