# Bash completion for the imgpipe programs.  Nothing here names an option:
# each program's --help says which options it has and what they take
# ("-f, --format=FORMAT"), so a new program completes as soon as it is
# installed.  FORMAT is completed from --list-formats, FILE, INPUT, LIST
# and ARCHIVE as files, DIR as directories, "a|b" as its words.
# Installed once, and under each program's name for bash-completion's
# on-demand loading (make install).

# _imgpipe_options PROG: "NAME ARG" per option, ARG "-" for a flag.
_imgpipe_options()
{
	local line name arg
	while IFS= read -r line; do
		[[ $line =~ ^\ +(-[A-Za-z0-9],\ )?(--[a-z0-9-]+)(=([^ ]+))? ]] ||
			continue
		name=${BASH_REMATCH[2]}
		arg=${BASH_REMATCH[4]:--}
		printf '%s %s\n' "$name" "$arg"
		[[ -n ${BASH_REMATCH[1]} ]] &&
			printf '%s %s\n' "${BASH_REMATCH[1]%, }" "$arg"
	done < <("$1" --help 2>/dev/null)
}

# _imgpipe_values PROG ARG WORD: the words ARG may be.
_imgpipe_values()
{
	local prog=$1 arg=$2 cur=$3
	case $arg in
	FORMAT)
		# every name, qemu-img's and the Image service's, one a line
		COMPREPLY=($(compgen -W "$("$prog" --list-formats 2>/dev/null |
		    awk '{ print $1 }')" -- "$cur")) ;;
	FILE|INPUT|LIST|ARCHIVE)
		compopt -o filenames 2>/dev/null
		COMPREPLY=($(compgen -f -- "$cur")) ;;
	DIR)
		compopt -o filenames 2>/dev/null
		COMPREPLY=($(compgen -d -- "$cur")) ;;
	*\|*)
		COMPREPLY=($(compgen -W "${arg//|/ }" -- "$cur")) ;;
	*)
		COMPREPLY=() ;;
	esac
}

_imgpipe()
{
	local prog=$1 cur=${COMP_WORDS[COMP_CWORD]} prev= opts name arg
	[[ $COMP_CWORD -gt 0 ]] && prev=${COMP_WORDS[COMP_CWORD-1]}
	COMPREPLY=()
	opts=$(_imgpipe_options "$prog")
	# --name=VALUE
	if [[ $cur == --*=* ]]; then
		name=${cur%%=*}
		arg=$(awk -v n="$name" '$1 == n { print $2; exit }' <<< "$opts")
		[[ -n $arg && $arg != - ]] && _imgpipe_values "$prog" "$arg" "${cur#*=}"
		return 0
	fi
	# the argument of the option before
	if [[ $prev == -* ]]; then
		arg=$(awk -v n="$prev" '$1 == n { print $2; exit }' <<< "$opts")
		if [[ -n $arg && $arg != - ]]; then
			_imgpipe_values "$prog" "$arg" "$cur"
			return 0
		fi
	fi
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$(awk '{ print $1 }' <<< "$opts")" -- "$cur"))
		return 0
	fi
	compopt -o filenames 2>/dev/null
	COMPREPLY=($(compgen -f -- "$cur"))
}

complete -F _imgpipe @PROGRAMS@
