# lib.tcl - what every shell dialogue test shares.
#
# A test calls `fresh_data` for a new data directory whose committed hostname is
# mail.example.com, `shell` to spawn the real binary through a pty with TERM=dumb, then `q`/`a`
# (expect this exact text, answer it). Any timeout or unexpected end fails the test at once.
set timeout 5
set stsgate $env(STSGATE_BIN)
set host "mail.example.com"
set P "$host> "

proc fail {msg} {
    puts "\nFAIL: $msg"
    exit 1
}

# A new data directory, named after the test, with the hostname committed.
proc fresh_data {{suffix ""}} {
    global env stsgate host
    set name [file rootname [file tail [info script]]]
    set dir "$env(TEST_TMP)/$name$suffix"
    file delete -force $dir
    file mkdir $env(TEST_TMP)
    set setup "sethostname\n$host\ncommit\ninitial\nn\n"
    if {[catch {exec $stsgate --data $dir << $setup} out]} {
        fail "setting the hostname failed: $out"
    }
    return $dir
}

# Spawns the shell on dir; returns its spawn id (also left in spawn_id).
proc shell {dir} {
    global stsgate spawn_id
    spawn -noecho env TERM=dumb $stsgate --data $dir
    return $spawn_id
}

# Expects exactly text; a timeout or the end of the shell fails the test. (Patterns given to
# expect_before with -i never see a timeout, so every wait carries its own.)
proc q {text} {
    set shown [string map [list "\r" "\\r" "\n" "\\n"] $text]
    expect {
        -exact $text {}
        timeout { fail "timeout waiting for: $shown" }
        eof { fail "the shell ended while waiting for: $shown" }
    }
}

# Expects exactly text, then answers.
proc a {text answer} {
    q $text
    send -- "$answer\r"
}

# Expects the main prompt, then runs a command.
proc cmd {line} {
    global P
    q $P
    send -- "$line\r"
}

# Expects the main prompt.
proc main_prompt {} {
    global P
    q $P
}

# Ends the session with exit and checks the exit status.
proc finish {{want 0}} {
    global P spawn_id
    q $P
    send -- "exit\r"
    expect {
        eof {}
        timeout { fail "the shell did not end" }
    }
    set r [wait -i $spawn_id]
    if {[lindex $r 3] != $want} {
        fail "exit status [lindex $r 3], want $want"
    }
}

# Waits for the end of the session and checks the exit status.
proc wait_status {want} {
    global spawn_id
    expect {
        eof {}
        timeout { fail "the shell did not end" }
    }
    set r [wait -i $spawn_id]
    if {[lindex $r 3] != $want} {
        fail "exit status [lindex $r 3], want $want"
    }
}

# The destconfig menu, as it is shown after the entry count.
set MENU "\r\nChoose the operation you want to perform:\r\n- SETUP - Change global settings.\r\n- NEW - Create a new entry.\r\n- EDIT - Modify an entry.\r\n- DELETE - Remove an entry.\r\n- DEFAULT - Change the default.\r\n- LIST - Display a summary list of all entries.\r\n- DETAIL - Display details for one destination or all entries.\r\n- CLEAR - Remove all entries.\r\n- IMPORT - Import tables from a file.\r\n- EXPORT - Export tables to a file.\r\n\[\]> "

# Expects the entry count and the menu, then chooses an operation.
proc menu {count verb} {
    global MENU
    q "\r\nThere are currently $count entries configured.\r\n$MENU"
    send -- "$verb\r"
}

set TLS_LIST "Do you want to use TLS support?\r\n1. No\r\n2. Preferred\r\n3. Required\r\n4. Preferred - Verify\r\n5. Required - Verify\r\n6. Required - Verify Hosted Domains\r\n"
set DANE_LIST "Do you want to use DANE support?\r\n1. No\r\n2. Opportunistic\r\n3. Mandatory\r\n"
set STS_LIST "Do you want to use MTA STS support?\r\n1. Off\r\n2. On\r\n"
set REMINDER "You have chosen to enable TLS. Please use the 'certconfig' command to ensure that there is a valid certificate configured."
set NOTE "Note: DANE and MTA STS will not be enforced for domains that have SMTP Routes configured."

# A NEW entry with every gate answered N but the concurrency one (also N): all defaults.
proc new_default_entry {count domain} {
    menu $count new
    a "Enter the domain you wish to configure.\r\n\[\]> " $domain
    a "Do you wish to configure a concurrency limit for $domain? \[Y\]> " n
    a "Do you wish to apply a messages-per-connection limit to this domain? \[N\]> " n
    a "Do you wish to apply a recipient limit to this domain? \[N\]> " n
    a "Do you wish to apply a specific TLS setting for this domain? \[N\]> " n
    a "Do you wish to apply a specific bounce profile to this domain? \[N\]> " n
    a "Do you wish to apply a specific IP sort preference to this domain? \[N\]> " n
}
