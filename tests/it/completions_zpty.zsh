# Drives zsh completion under zpty: loads the completion directory $1 on fpath,
# types $2 and a TAB, and prints each candidate compadd receives as <HIT>candidate.
zmodload zsh/zpty
zpty z zsh -f -i
zpty -w z "PROMPT=''; RPROMPT=''; fpath=($1 \$fpath); autoload -Uz compinit; compinit -u -D"
zpty -w z 'compadd () { if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then builtin compadd "$@"; return; fi; typeset -a __hits; builtin compadd -A __hits "$@"; (( $#__hits )) && print -l -- "<HI""T>"${^__hits}; }'
zpty -w z 'comppostfuncs=( __done ); __done () { print "<DO""NE>"; exit }'
zpty -w z 'zstyle ":completion:*" list-grouped false; zstyle ":completion:*" insert-tab false'
zpty -n -w z "$2"$'\t'
out=""
for i in {1..150}; do
  if zpty -r -t z line; then out+=$line; [[ $out == *"<DONE>"* ]] && break; else sleep 0.1; fi
done
print -r -- "$out"
zpty -d z
