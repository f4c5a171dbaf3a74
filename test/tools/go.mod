module github.com/keepsake-dev/keepsake/test/tools

go 1.26
